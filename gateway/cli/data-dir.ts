import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { STORE_FILE } from "../store/store.js";
import { UsageError } from "./usage-error.js";

/** Where an installed gateway keeps its stores, one directory per intersection. */
export const DEFAULT_DATA_DIR = "/var/lib/greenwave";

/** The store of one intersection; a wrong id or data directory is a usage error that lists what is there. */
export function storeFile(dataDir: string, intersection: string): string {
  const root = resolve(dataDir);
  const dir = join(root, intersection);
  if (existsSync(dir) && statSync(dir).isDirectory()) return join(dir, STORE_FILE);
  const known = storesIn(root);
  throw new UsageError(
    `no gateway data for intersection ${intersection} in ${root} (${known.length > 0 ? `found: ${known.join(", ")}` : "no gateway stores there"}; check --intersection and --data-dir)`,
  );
}

/** The intersections with a store under a data directory (the first 20, for a message). */
function storesIn(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(join(root, entry.name, STORE_FILE)))
      .map((entry) => entry.name)
      .sort()
      .slice(0, 20);
  } catch {
    return [];
  }
}
