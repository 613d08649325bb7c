import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PackagingError } from "./errors.js";

/**
 * MANIFEST at the top of a release: one line per file, `<path> TAB <size> TAB <sha256>`, sorted by
 * path, for every regular file but itself (a symbolic link: `<path> TAB link TAB <target>`). Two
 * builds compare with diff; a technician checks an installed release with
 *   cd /opt/greenwave/current && awk -F'\t' '$2 != "link" { print $3 "  " $1 }' MANIFEST | sha256sum -c --quiet
 */
export const MANIFEST = "MANIFEST";

export interface ManifestEntry {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export function listFiles(root: string): string[] {
  const files: string[] = [];
  const visit = (relativeDir: string) => {
    for (const entry of readdirSync(join(root, relativeDir), { withFileTypes: true })) {
      const path = relativeDir ? `${relativeDir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) visit(path);
      else files.push(path);
    }
  };
  visit("");
  // Byte order, as `LC_ALL=C sort` and tar --sort=name have it.
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function manifestText(root: string): string {
  const lines: string[] = [];
  for (const path of listFiles(root)) {
    if (path === MANIFEST) continue;
    if (/\s/.test(path))
      throw new PackagingError(`${path}: a release file name with white space cannot go into ${MANIFEST}`);
    const full = join(root, path);
    const stat = lstatSync(full);
    if (stat.isSymbolicLink()) lines.push(`${path}\tlink\t${readlinkSync(full)}`);
    else
      lines.push(`${path}\t${stat.size}\t${createHash("sha256").update(readFileSync(full)).digest("hex")}`);
  }
  return `${lines.join("\n")}\n`;
}

export function writeManifest(root: string): void {
  writeFileSync(join(root, MANIFEST), manifestText(root));
}

export function parseManifest(text: string): ManifestEntry[] {
  return text
    .split("\n")
    .map((line) => line.split("\t"))
    .filter((fields) => fields.length === 3 && fields[1] !== "link")
    .map(([path, size, sha256]) => {
      return { path: path as string, size: Number(size), sha256: sha256 as string };
    });
}
