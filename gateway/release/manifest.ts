import { machine } from "node:os";
import { join } from "node:path";
import { readFileSync, statSync } from "node:fs";
import { z } from "zod";
import { ReleaseError } from "./errors.js";

/** `release.json` at the top of every release (the field contract). */
export interface ReleaseManifest {
  readonly version: string;
  readonly arch: Arch;
  readonly node: string;
  /** The store schema this release migrates to (its MIGRATIONS.length). */
  readonly schemaVersion: number;
  readonly commit: string;
}

export type Arch = "amd64" | "arm64";

/**
 * A version names a directory (releases/<version>) and a backup (pre-<version>-…): letters, digits and
 * `. + ~ _ -`, never `.` or `..`, so that it can never reach outside releases/.
 */
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$/;

export function checkVersion(version: string, where: string): string {
  if (!VERSION.test(version) || version.includes(".."))
    throw new ReleaseError(
      `${where}: "${version}" is not a release version (letters, digits and . + ~ _ -, at most 64, not starting with a dot)`,
    );
  return version;
}

const manifestSchema = z.object({
  version: z.string().regex(VERSION),
  arch: z.enum(["amd64", "arm64"]),
  node: z.string().min(1).max(64),
  schemaVersion: z.number().int().min(1).max(1_000_000),
  commit: z.string().min(1).max(128),
});

/** release.json is a few hundred bytes: anything past this is not one. */
const MAX_MANIFEST_BYTES = 64 * 1024;

/** Parses release.json text; `where` names the file (or the package it came from) in every error. */
export function parseManifest(text: string, where: string): ReleaseManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ReleaseError(
      `${where} is not JSON (${(error as Error).message}): the release is damaged; rebuild it`,
    );
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`).join("; ");
    throw new ReleaseError(
      `${where} is not a valid release.json (${issues}): the release is damaged; rebuild it`,
    );
  }
  return parsed.data;
}

/** Reads <dir>/release.json of an unpacked release. */
export function readManifest(dir: string): ReleaseManifest {
  const file = join(dir, "release.json");
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new Error("not a regular file");
    size = stat.size;
  } catch (error) {
    throw new ReleaseError(
      `${file}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (error as Error).message}: ${dir} is not a complete release; install it again (greenwave upgrade FILE)`,
    );
  }
  if (size > MAX_MANIFEST_BYTES)
    throw new ReleaseError(`${file} is ${size} bytes, not a release.json (at most ${MAX_MANIFEST_BYTES})`);
  return parseManifest(readFileSync(file, "utf8"), file);
}

/** Debian's name for what `uname -m` says; null for a machine greenwave is not built for. */
export function archOfMachine(unameM: string): Arch | null {
  if (unameM === "x86_64" || unameM === "amd64") return "amd64";
  if (unameM === "aarch64" || unameM === "arm64") return "arm64";
  return null;
}

/** Refuses a release built for another machine: its Node and native addons would not even load. */
export function checkArch(manifest: ReleaseManifest, where: string, unameM: string = machine()): void {
  const here = archOfMachine(unameM);
  if (here === manifest.arch) return;
  throw new ReleaseError(
    `${where} is built for ${manifest.arch}, but this machine is ${unameM}${here ? ` (${here})` : ""}: its Node runtime and native addons cannot run here; install the ${here ?? "matching"} package`,
  );
}
