import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { writeDurably } from "./backups.js";
import { syncDirectory } from "./links.js";
import { installPaths } from "./paths.js";

/**
 * `/var/lib/greenwave/release-state.json`: which release is active, which one it replaced, and every
 * activation, rollback and refusal (the newest MAX_HISTORY). Written whole and atomically (temporary
 * file, fsync, rename, directory fsync); read by `readReleaseState` for the gateway's status.
 */

export const MAX_HISTORY = 50;

const entrySchema = z.object({
  from: z.string().nullable(),
  to: z.string(),
  outcome: z.enum(["activated", "rolled-back", "refused"]),
  why: z.string(),
  atWallMs: z.number(),
});
const stateSchema = z.object({
  active: z.string().nullable(),
  previous: z.string().nullable(),
  history: z.array(entrySchema),
});

export type ReleaseHistoryEntry = z.infer<typeof entrySchema>;
export type ReleaseState = z.infer<typeof stateSchema>;

export type ReleaseStateReading =
  /** No activation ever ran here (or no gateway is installed under this root). */
  | { readonly status: "missing"; readonly file: string }
  | { readonly status: "ok"; readonly file: string; readonly state: ReleaseState }
  | { readonly status: "unreadable"; readonly file: string; readonly problem: string };

/** Larger than 50 entries ever make: refused unread rather than parsed. */
const MAX_STATE_BYTES = 256 * 1024;

/**
 * The release state under `root` ("/" on a gateway), read only and never throwing: for the status.
 * `state.history` is oldest first; its last entry is the latest activation, rollback or refusal.
 */
export function readReleaseState(root = "/"): ReleaseStateReading {
  return readReleaseStateFile(installPaths(root).stateFile);
}

/** The same, from the file itself (a gateway finds it in its data directory). */
export function readReleaseStateFile(file: string): ReleaseStateReading {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { status: "missing", file };
    return { status: "unreadable", file, problem: (error as Error).message };
  }
  if (text.length > MAX_STATE_BYTES)
    return { status: "unreadable", file, problem: `${text.length} bytes, more than ${MAX_STATE_BYTES}` };
  try {
    return { status: "ok", file, state: stateSchema.parse(JSON.parse(text)) };
  } catch (error) {
    return { status: "unreadable", file, problem: (error as Error).message.slice(0, 300) };
  }
}

/** Adds one entry (dropping the oldest past MAX_HISTORY) and sets active/previous; atomic. */
export function recordRelease(
  root: string,
  links: { active: string | null; previous: string | null },
  entry: ReleaseHistoryEntry,
): ReleaseState {
  const reading = readReleaseState(root);
  // An unreadable state file is replaced rather than blocking an activation: the links and the
  // stores' audit trails are the authority, this file is their summary.
  const history = reading.status === "ok" ? reading.state.history : [];
  const state: ReleaseState = { ...links, history: [...history, entry].slice(-MAX_HISTORY) };
  const file = installPaths(root).stateFile;
  mkdirSync(dirname(file), { recursive: true });
  const temporary = join(dirname(file), `.release-state.${process.pid}.json`);
  writeDurably(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, file);
  syncDirectory(dirname(file));
  return state;
}
