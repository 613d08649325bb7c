import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Links } from "./links.js";
import type { InstallPaths } from "./paths.js";

/** Releases kept on the device: current, previous and the newest other one (the field contract). */
export const MAX_RELEASES = 3;

/**
 * Removes the oldest release directories past MAX_RELEASES, never `current` or `previous`; after a
 * successful activation only (a rollback may still need what is there). Returns what it removed.
 */
export function pruneReleases(paths: InstallPaths, links: Links, keep = MAX_RELEASES): string[] {
  if (!existsSync(paths.releases)) return [];
  const linked = new Set([links.current, links.previous].filter((v): v is string => v !== null));
  const others = readdirSync(paths.releases, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith(".") && !linked.has(entry.name))
    .map((entry) => ({ name: entry.name, mtimeMs: statSync(join(paths.releases, entry.name)).mtimeMs }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  const removed: string[] = [];
  for (const release of others.slice(Math.max(0, keep - linked.size))) {
    rmSync(join(paths.releases, release.name), { recursive: true, force: true });
    removed.push(release.name);
  }
  return removed;
}
