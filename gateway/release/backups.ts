import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import Database from "better-sqlite3";
import { z } from "zod";
import { ReleaseError } from "./errors.js";
import { syncDirectory } from "./links.js";
import { handBackToOwner } from "../store/ownership.js";
import type { InstallPaths } from "./paths.js";
import { readStoreSchema, type StoreFiles } from "./stores.js";

/**
 * Store backups taken before a release migrates them: `<data>/backups/pre-<version>-<UTC time>/`, one
 * directory per intersection holding a consistent copy of its gateway.db (SQLite's online backup API,
 * so the copy is whole even if something still writes), a copy of its latch.rec for the record (a
 * rollback never restores it: it holds the newest latch), and `backup.json` written last. A backup is
 * built under a temporary name and renamed into place, so one without backup.json is one that was cut
 * short: it is never restored, and the next prune removes it (activations hold a lock: a partial
 * backup is never another one's work in progress).
 */

export const MAX_BACKUPS = 3;
const MANIFEST = "backup.json";

const manifestSchema = z.object({
  v: z.literal(1),
  /** The release active when it was taken (null: none), and the one about to migrate. */
  from: z.string().nullable(),
  to: z.string(),
  /** The schema version the release `to` declares. */
  toSchemaVersion: z.number().int(),
  createdAtWallMs: z.number(),
  stores: z.array(
    z.object({ id: z.string(), schemaVersion: z.number().int().nullable(), storeId: z.string().nullable() }),
  ),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

export interface Backup {
  readonly dir: string;
  readonly manifest: BackupManifest;
}

/** `20250314T101502123Z`: sortable, and safe in a file name. */
function stamp(wallMs: number): string {
  return new Date(wallMs).toISOString().replace(/[-:.]/g, "");
}

/** Backs up every store (service stopped by the caller); returns the finished backup. */
export async function backupStores(
  paths: InstallPaths,
  stores: readonly StoreFiles[],
  release: { from: string | null; to: string; toSchemaVersion: number },
  nowWallMs: number,
): Promise<Backup> {
  const name = `pre-${release.to}-${stamp(nowWallMs)}`;
  const dir = join(paths.backups, name);
  const partial = join(paths.backups, `.${name}.partial`);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  try {
    const entries: BackupManifest["stores"] = [];
    for (const store of stores) {
      const into = join(partial, store.id);
      mkdirSync(into);
      const schema = readStoreSchema(store.db);
      if (schema.schemaVersion !== null) await copyDatabase(store.db, join(into, basename(store.db)));
      handBackToOwner(store.dir);
      if (existsSync(store.record)) copyDurably(store.record, join(into, basename(store.record)));
      syncDirectory(into);
      entries.push({ id: store.id, ...schema });
    }
    const manifest: BackupManifest = { v: 1, ...release, createdAtWallMs: nowWallMs, stores: entries };
    writeDurably(join(partial, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    syncDirectory(partial);
    renameSync(partial, dir);
    syncDirectory(paths.backups);
    return { dir, manifest };
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    if (error instanceof ReleaseError) throw error;
    throw new ReleaseError(
      `cannot back up the stores into ${paths.backups}: ${(error as Error).message}. Nothing was switched; free space under ${paths.data} and try again`,
    );
  }
}

/** SQLite's online backup: a whole, consistent database (what the WAL held included) in one file. */
async function copyDatabase(from: string, to: string): Promise<void> {
  const source = new Database(from, { readonly: true, fileMustExist: true });
  try {
    await source.backup(to);
  } finally {
    source.close();
  }
  // One self-contained file: no -wal or -shm beside it, whoever reads it, and a technician may copy it
  // by hand. A gateway that opens a restored copy puts it back into WAL mode itself.
  const copy = new Database(to);
  try {
    copy.pragma("journal_mode = DELETE");
  } finally {
    copy.close();
  }
  fsyncFile(to);
}

export function copyDurably(from: string, to: string): void {
  copyFileSync(from, to);
  fsyncFile(to);
}

export function writeDurably(file: string, text: string): void {
  writeFileSync(file, text);
  fsyncFile(file);
}

function fsyncFile(file: string): void {
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Complete backups (with a valid backup.json), newest first. */
export function listBackups(paths: InstallPaths): Backup[] {
  if (!existsSync(paths.backups)) return [];
  const backups: Backup[] = [];
  for (const entry of readdirSync(paths.backups, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith("pre-")) continue;
    const dir = join(paths.backups, entry.name);
    const manifest = readBackupManifest(dir);
    if (manifest) backups.push({ dir, manifest });
  }
  return backups.sort((a, b) => b.manifest.createdAtWallMs - a.manifest.createdAtWallMs);
}

function readBackupManifest(dir: string): BackupManifest | null {
  try {
    return manifestSchema.parse(JSON.parse(readFileSync(join(dir, MANIFEST), "utf8")));
  } catch {
    return null;
  }
}

/**
 * Keeps the newest `keep` complete backups; removes older ones and every one cut short. The backups
 * named in `spare` are never removed (the one a rollback still needs). Returns what it removed.
 */
export function pruneBackups(
  paths: InstallPaths,
  keep = MAX_BACKUPS,
  spare: readonly string[] = [],
): string[] {
  if (!existsSync(paths.backups)) return [];
  const complete = new Set(
    listBackups(paths)
      .slice(0, keep)
      .map((b) => b.dir),
  );
  const removed: string[] = [];
  for (const entry of readdirSync(paths.backups, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(paths.backups, entry.name);
    if (complete.has(dir) || spare.includes(dir)) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/**
 * The newest backup whose stores a release of `schemaVersion` can open (none newer than it): what a
 * downgrade to that release would need restored first.
 */
export function matchingBackup(paths: InstallPaths, schemaVersion: number): Backup | null {
  return (
    listBackups(paths).find((backup) =>
      backup.manifest.stores.every((s) => s.schemaVersion === null || s.schemaVersion <= schemaVersion),
    ) ?? null
  );
}
