import type Database from "better-sqlite3";
import type { FaultKind, FaultLatch } from "../core/monitor.js";
import type { DatabaseReading, LatchDatabase } from "./durable-latch.js";
import { StoreError } from "./errors.js";

/**
 * The database's copy of the latch: the `latch` row (migration 1) and two `meta` rows that tie the
 * database to its latch record. They are rows, not schema, on purpose: SQLite opens a 0-byte or a new
 * file as an empty database and the migrations then create every table, so only data written by an
 * earlier run can tell an emptied store from a first start.
 */

/** The store's identity, also written in the latch record: a database that does not carry it was replaced or emptied. */
const STORE_ID_KEY = "store_id";
/** Set once the latch record exists: from then on a missing record is a lost one, not an upgrade. */
const RECORD_CREATED_KEY = "latch_record_created";

export interface LatchMarkers {
  /** null: a database from a greenwave before the latch record, or one with no history. */
  readonly storeId: string | null;
  readonly recordCreated: boolean;
}

export function readLatchMarkers(db: Database.Database): LatchMarkers {
  const value = (key: string) =>
    (db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined)?.value ??
    null;
  return { storeId: value(STORE_ID_KEY), recordCreated: value(RECORD_CREATED_KEY) === "1" };
}

export function writeLatchMarkers(
  db: Database.Database,
  markers: { storeId: string; recordCreated: boolean },
): void {
  const put = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  put.run(STORE_ID_KEY, markers.storeId);
  put.run(RECORD_CREATED_KEY, markers.recordCreated ? "1" : "0");
}

export function readLatchRow(db: Database.Database): FaultLatch | null {
  const row = db.prepare("SELECT kind, message, groups, at_wall_ms FROM latch WHERE id = 1").get() as
    { kind: string; message: string; groups: string; at_wall_ms: number } | undefined;
  if (!row) return null;
  let groups: string[] = [];
  try {
    const parsed: unknown = JSON.parse(row.groups);
    if (Array.isArray(parsed)) groups = parsed.map(String);
  } catch {
    // the kind and message are what matter; a latch is never dropped for an unreadable detail
  }
  return { kind: row.kind as FaultKind, message: row.message, groups, atWallMs: row.at_wall_ms };
}

export function writeLatchRow(db: Database.Database, latch: FaultLatch | null): void {
  if (!latch) {
    db.prepare("DELETE FROM latch WHERE id = 1").run();
    return;
  }
  db.prepare(
    "INSERT OR REPLACE INTO latch (id, kind, message, groups, at_wall_ms) VALUES (1, ?, ?, ?, ?)",
  ).run(latch.kind, latch.message, JSON.stringify(latch.groups), latch.atWallMs);
}

/**
 * The database's side of the latch for DurableLatch: its row and the markers that tie it to the latch
 * record, read and written (forced) through the store.
 */
export function latchDatabaseOf(
  db: Database.Database,
  file: string,
  hadSchemaAtOpen: boolean,
  forced: (writes: () => void) => void,
): LatchDatabase {
  return {
    file: file,
    read: (): DatabaseReading => {
      const markers = readLatchMarkers(db);
      // The migrations have just created every table of an emptied file: only the schema this open
      // found, or markers written by an earlier run, tell a store with a history from an empty one.
      if (!hadSchemaAtOpen && markers.storeId === null)
        return { status: "empty", detail: "no schema when it was opened: new, 0 bytes or emptied" };
      return { status: "ok", ...markers, latch: readLatchRow(db) };
    },
    write: (latch, markers) => {
      try {
        forced(() => {
          writeLatchRow(db, latch);
          if (markers) writeLatchMarkers(db, markers);
        });
      } catch (error) {
        throw new StoreError(`cannot store the latch in ${file}: ${(error as Error).message}`);
      }
    },
  };
}
