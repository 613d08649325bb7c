import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { activateRelease } from "./activate.js";
import type { ActivateOptions, ActivationResult } from "./activation.js";
import { ReleaseError } from "./errors.js";
import { archOfMachine, checkArch, parseManifest, readManifest } from "./manifest.js";
import { readLinks } from "./links.js";
import { installPaths, releaseDir } from "./paths.js";
import { checkDowngrade, readStores } from "./preflight.js";
import { readReleaseState } from "./release-state.js";
import { checkEntries, checkLinksOnDisk, extractTarball, listTarball } from "./tarball.js";
import { machine } from "node:os";

/**
 * `greenwave upgrade FILE`: installs a release and activates it through the health gate.
 * - `.tar.gz`: checked entry by entry, extracted, verified (release.json, arch, links), placed under
 *   releases/<version>, then `release activate <version>` in this process.
 * - `.deb`: checked (package, arch, the store schema it brings), then `dpkg -i`: the package's
 *   postinst runs `release activate` of the new release; its exit status is dpkg's, and the outcome
 *   is read back from release-state.json.
 * Both refuse a release whose store schema is older than the stores' (a downgrade it cannot open).
 */
export async function upgrade(file: string, options: ActivateOptions): Promise<ActivationResult> {
  try {
    if (!existsSync(file) || !statSync(file).isFile())
      throw new ReleaseError(`${file}: no such file (give the path of a greenwave .deb or .tar.gz)`);
    if (file.endsWith(".deb")) return upgradeDeb(file, options);
    if (file.endsWith(".tar.gz") || file.endsWith(".tgz")) return await upgradeTarball(file, options);
    throw new ReleaseError(`${file}: not a .deb or a .tar.gz; greenwave releases come as one of these`);
  } catch (error) {
    if (!(error instanceof ReleaseError)) throw error;
    return { outcome: "refused", version: "?", message: error.message, exitCode: 1 };
  }
}

async function upgradeTarball(file: string, options: ActivateOptions): Promise<ActivationResult> {
  const paths = installPaths(options.root);
  const version = checkEntries(listTarball(file), file);
  options.report(`${file}: release ${version}, every entry inside greenwave-${version}/`);
  if (readLinks(paths).current === version)
    return {
      outcome: "unchanged",
      version,
      message: `${version} is already the active release: nothing to do`,
      exitCode: 0,
    };
  mkdirSync(paths.releases, { recursive: true });
  const staging = mkdtempSync(join(paths.releases, ".incoming-"));
  try {
    extractTarball(file, staging);
    const unpacked = join(staging, `greenwave-${version}`);
    checkLinksOnDisk(unpacked);
    const manifest = readManifest(unpacked);
    if (manifest.version !== version)
      throw new ReleaseError(
        `${file}: release.json says version ${manifest.version}, the tarball greenwave-${version}/: refused`,
      );
    checkArch(manifest, file, options.unameM);
    checkDowngrade(paths, manifest, readStores(paths));
    const target = releaseDir(paths, version);
    // The same version again (a rebuilt tarball): it replaces the one that is not active.
    rmSync(target, { recursive: true, force: true });
    renameSync(unpacked, target);
    options.report(`installed in ${target}`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return await activateRelease(version, options);
}

/** Runs a command that must answer quickly, with its arguments as arguments (never through a shell). */
function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 120_000, maxBuffer: 8 * 1024 * 1024 });
  if (result.error) throw new ReleaseError(`cannot ${what}: ${result.error.message}`);
  if (result.status !== 0)
    throw new ReleaseError(`cannot ${what}: ${result.stderr.trim() || `exit ${result.status}`}`);
  return result.stdout;
}

/** Where the package stages the release tree (the field contract), and so its release.json. */
const STAGED_MANIFEST = "./usr/lib/greenwave/release/release.json";

function upgradeDeb(file: string, options: ActivateOptions): ActivationResult {
  const paths = installPaths(options.root);
  const fields = run(
    "dpkg-deb",
    ["--field", file, "Package", "Version", "Architecture"],
    `read ${file} (dpkg-deb)`,
  );
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(fields)?.[1]?.trim() ?? "";
  if (field("Package") !== "greenwave")
    throw new ReleaseError(`${file} is the package "${field("Package")}", not greenwave`);
  const unameM = options.unameM ?? machine();
  const here = archOfMachine(unameM);
  if (field("Architecture") !== here)
    throw new ReleaseError(
      `${file} is built for ${field("Architecture")}, but this machine is ${unameM}${here ? ` (${here})` : ""}: install the ${here ?? "matching"} package`,
    );
  // release.json, read out of the package without installing it: the schema it brings.
  const text = run(
    "sh",
    ["-c", 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2"', "sh", file, STAGED_MANIFEST],
    `read release.json from ${file}`,
  );
  const manifest = parseManifest(text, `${file}:${STAGED_MANIFEST}`);
  checkArch(manifest, file, unameM);
  checkDowngrade(paths, manifest, readStores(paths));

  const startedAtWallMs = Date.now();
  const args = [...(paths.root === "/" ? [] : [`--root=${paths.root}`]), "-i", file];
  options.report(
    `dpkg ${args.join(" ")}   (its postinst activates ${manifest.version} through the health gate)`,
  );
  const dpkg = spawnSync("dpkg", args, { stdio: "inherit" });
  const reading = readReleaseState(paths.root);
  const entry =
    reading.status === "ok"
      ? reading.state.history.findLast((e) => e.to === manifest.version && e.atWallMs >= startedAtWallMs)
      : undefined;
  const version = manifest.version;
  if (dpkg.status === 0)
    return {
      outcome: entry?.outcome === "activated" ? "activated" : "unchanged",
      version,
      message: `dpkg installed ${version}${entry ? `; ${entry.outcome}: ${entry.why}` : ""}`,
      exitCode: 0,
    };
  if (entry?.outcome === "rolled-back")
    return {
      outcome: "rolled-back",
      version,
      message: `dpkg could not configure ${version}: its postinst ROLLED IT BACK to ${entry.from ?? "nothing"}: ${entry.why}. \`dpkg -l greenwave\` shows it "iF" (half-configured); ${entry.from ?? "the previous release"} runs. Find why it failed (journalctl -u greenwave), fix it, then \`dpkg --configure -a\` tries the activation again.`,
      exitCode: 1,
    };
  return {
    outcome: "refused",
    version,
    message: `dpkg -i ${file} failed (${dpkg.error?.message ?? `exit ${dpkg.status ?? dpkg.signal}`})${entry ? `; the activation said: ${entry.outcome}: ${entry.why}` : ": see its output above"}`,
    exitCode: 1,
  };
}
