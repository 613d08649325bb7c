import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { LATCH_RECORD_FILE } from "../store/latch-record.js";
import { readLatchMarkers } from "../store/latch-table.js";
import { STORE_FILE } from "../store/store.js";
import { ReleaseError } from "./errors.js";
import type { InstallPaths } from "./paths.js";

/**
 * The gateway stores under the data directory (`<data>/<intersection>/gateway.db` and its latch record
 * `latch.rec`), read WITHOUT GatewayStore: opening one through it would migrate it to this code's
 * schema, and activation must see (and back up) the store exactly as the running release left it.
 */

export interface StoreFiles {
  /** The intersection id: the directory's name. */
  readonly id: string;
  readonly dir: string;
  readonly db: string;
  readonly record: string;
}

/** The SQLite side files that belong with a database: moved, copied and removed together with it. */
export const SIDE_FILES = ["-wal", "-shm", "-journal"] as const;

function storeFiles(data: string, id: string): StoreFiles {
  const dir = join(data, id);
  return { id, dir, db: join(dir, STORE_FILE), record: join(dir, LATCH_RECORD_FILE) };
}

/** Every store directory: one holding a gateway.db or a latch.rec (either copy proves a store was there). */
export function findStores(paths: InstallPaths): StoreFiles[] {
  if (!existsSync(paths.data)) return [];
  return readdirSync(paths.data, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== "backups")
    .map((entry) => storeFiles(paths.data, entry.name))
    .filter((store) => existsSync(store.db) || existsSync(store.record))
    .sort((a, b) => a.id.localeCompare(b.id));
}

export interface StoreSchema {
  /** SQLite's user_version: the number of migrations applied; 0 for a new or empty file; null without a file. */
  readonly schemaVersion: number | null;
  /** The store id (meta), which its latch record also carries; null before the latch record existed. */
  readonly storeId: string | null;
}

/** Reads a store's schema version and identity, read only. Throws when the file is not a database. */
export function readStoreSchema(db: string): StoreSchema {
  if (!existsSync(db)) return { schemaVersion: null, storeId: null };
  if (statSync(db).size === 0) return { schemaVersion: 0, storeId: null };
  let connection: Database.Database;
  try {
    connection = new Database(db, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new ReleaseError(`cannot open the store ${db}: ${(error as Error).message}`);
  }
  try {
    const schemaVersion = connection.pragma("user_version", { simple: true }) as number;
    const hasMeta = connection
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
      .get();
    return { schemaVersion, storeId: hasMeta ? readLatchMarkers(connection).storeId : null };
  } catch (error) {
    throw new ReleaseError(
      `the store ${db} is unreadable (${(error as Error).message}): check it with greenwave doctor before an upgrade`,
    );
  } finally {
    connection.close();
  }
}
