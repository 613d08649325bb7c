import { statfsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type CheckResult, fail, pass, warn } from "./check-result.js";

/**
 * Free space on the data directory's filesystem. The numbers, from the store's own bounds:
 * - The store (gateway.db) is bounded: 100,000 events, 10,000 outbox messages, 1,000 transactions.
 *   Filled to its bounds with typical events (165-byte detail, 317-byte messages) it measured 25 MB,
 *   plus its WAL (up to ~4 MB between checkpoints, SQLite's 1000 pages). Until it reaches its bounds it
 *   grows by what the gateway writes: about 5 MB a day today (issue 14), under 50 MB a day with MQTT
 *   and events on.
 * - FAIL under 50 MB: not a full store and its WAL, or a day or two of writes at the worst rate: the
 *   store can hit ENOSPC soon, and then only the latch record (written in place) still takes a latch.
 * - WARN under 200 MB: also room for an upgrade's store backup before a migration (another ~30 MB),
 *   a new release beside the old one, and a few days of the worst write rate.
 */
export const DISK_FAIL_BYTES = 50 * 1024 * 1024;
export const DISK_WARN_BYTES = 200 * 1024 * 1024;

export interface DiskThresholds {
  readonly failBytes: number;
  readonly warnBytes: number;
}

export function checkDisk(
  dataDir: string,
  thresholds: DiskThresholds = { failBytes: DISK_FAIL_BYTES, warnBytes: DISK_WARN_BYTES },
): CheckResult {
  const { path, stats, error } = statNearest(resolve(dataDir));
  if (!stats) return warn("disk", `cannot read the free space of ${dataDir}: ${error}`, "check --data-dir");
  const free = Number(stats.bavail) * Number(stats.bsize);
  const total = Number(stats.blocks) * Number(stats.bsize);
  const on = path === resolve(dataDir) ? dataDir : `${path} (${dataDir} does not exist yet)`;
  const detail = `${mb(free)} free of ${mb(total)} on the filesystem of ${on}`;
  const action = `free space there (old releases: ls /opt/greenwave/releases; logs: journalctl --vacuum-size=50M; backups under ${dataDir}/backups)`;
  if (free < thresholds.failBytes)
    return fail(
      "disk",
      `${detail}, under ${mb(thresholds.failBytes)}: the store may soon not be able to write`,
      action,
    );
  if (free < thresholds.warnBytes)
    return warn(
      "disk",
      `${detail}, under ${mb(thresholds.warnBytes)}: little room for an upgrade and its store backup`,
      action,
    );
  return pass("disk", detail);
}

/** statfs of the directory, or of its nearest existing parent (the filesystem it will be created on). */
function statNearest(path: string): {
  path: string;
  stats: ReturnType<typeof statfsSync> | null;
  error: string;
} {
  let current = path;
  for (;;) {
    try {
      return { path: current, stats: statfsSync(current), error: "" };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const parent = dirname(current);
      if ((code !== "ENOENT" && code !== "ENOTDIR") || parent === current)
        return { path: current, stats: null, error: (error as Error).message };
      current = parent;
    }
  }
}

function mb(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib >= 10 * 1024) return `${(mib / 1024).toFixed(1)} GB`;
  return `${mib.toFixed(mib < 10 ? 1 : 0)} MB`;
}
