import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import Database from "better-sqlite3";
import type { FaultLatch } from "../core/monitor.js";
import { readDatabaseCopy, reconcileLatch, sameLatch } from "../store/durable-latch.js";
import { LatchRecordFile } from "../store/latch-record.js";
import { writeLatchMarkers, writeLatchRow } from "../store/latch-table.js";
import { copyDurably } from "./backups.js";
import { handBackToOwner } from "../store/ownership.js";
import { syncDirectory } from "./links.js";
import { insertEvent, type ReleaseAuditEvent } from "./store-audit.js";
import { SIDE_FILES, type StoreFiles } from "./stores.js";

/**
 * A rollback puts a store back as it was before the failed release migrated it — and CARRIES THE
 * LATCH FORWARD: a fault latched while the failed release ran (in its latch record, its database, or
 * both) is latched in the restored store too, in both copies. Why it is done this way:
 * - The latch record (latch.rec) is never restored from the backup: it is the copy written first, in
 *   place, and it holds the newest latch. The restored database gets the latch row and the markers
 *   that tie it to that record (the same store id), so a start finds two copies that agree.
 * - What the failed release left is read with the starting gateway's own rules (reconcileLatch: the
 *   union of both copies, a lost store latches). This code is the NEW release's (it runs the health
 *   gate), so it reads exactly the formats the failed release wrote.
 * - A latch is never dropped by a rollback: if the failed release cleared a latch the backup still
 *   holds, the restored store is latched (the union rule's safe direction); an operator resets it.
 * - Only migration 1's latch, meta and events tables are written: they exist in every schema.
 * - The events the failed release appended are copied with their sequence numbers (bounded), so the
 *   audit trail says what happened during the attempt, and the trail's numbering continues after the
 *   last number already published (receivers drop a number they saw as a duplicate).
 * - The failed release's database is kept (moved, with its WAL) beside the backup, for diagnosis.
 */

/** Events of the failed attempt copied into the restored store: an attempt lasts minutes at most. */
export const MAX_CARRIED_EVENTS = 10_000;

export interface StoreRollback {
  readonly id: string;
  /** What the store holds now. */
  readonly action: "restored" | "kept" | "moved-aside";
  /** Where the failed release's database was moved; null when it was kept in place. */
  readonly failedCopy: string | null;
  /** The latch in force after the rollback (what a start loads), and whether the failed attempt latched it. */
  readonly latch: FaultLatch | null;
  readonly latchedDuringAttempt: boolean;
  readonly eventsCarried: number;
  /** Problems an operator must hear about (the rollback went on regardless). */
  readonly problems: readonly string[];
}

interface CarriedEvent {
  seq: number;
  at_wall_ms: number;
  type: string;
  actor: string | null;
  detail: string;
}

/** What the failed attempt left in this store's two copies: the latch a start would load. */
function latchLeft(
  store: StoreFiles,
  nowWallMs: number,
): { latch: FaultLatch | null; storeId: string | null } {
  const verdict = reconcileLatch(
    new LatchRecordFile(store.record).read(),
    readDatabaseCopy(store.db),
    { record: store.record, database: store.db },
    nowWallMs,
  );
  return { latch: verdict.latch, storeId: verdict.storeId };
}

function moveDatabaseAside(store: StoreFiles, into: string): string | null {
  if (!existsSync(store.db)) return null;
  mkdirSync(into, { recursive: true });
  const target = join(into, basename(store.db));
  for (const suffix of ["", ...SIDE_FILES])
    if (existsSync(store.db + suffix)) renameSync(store.db + suffix, target + suffix);
  syncDirectory(store.dir);
  return target;
}

function readEventsAfter(
  dbFile: string,
  afterSeq: number,
): { events: CarriedEvent[]; problem: string | null } {
  let db: Database.Database | null = null;
  try {
    db = new Database(dbFile, { readonly: true, fileMustExist: true });
    const events = db
      .prepare("SELECT seq, at_wall_ms, type, actor, detail FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
      .all(afterSeq, MAX_CARRIED_EVENTS) as CarriedEvent[];
    return { events, problem: null };
  } catch (error) {
    return {
      events: [],
      problem: `the failed attempt's events could not be read: ${(error as Error).message}`,
    };
  } finally {
    db?.close();
  }
}

/** Restores one store from its backup copy, carrying the failed attempt's latch and events forward. */
export function restoreStore(
  store: StoreFiles,
  backupDb: string,
  failedDir: string,
  event: ReleaseAuditEvent,
  nowWallMs: number,
): StoreRollback {
  const problems: string[] = [];
  const left = latchLeft(store, nowWallMs);
  const before = readDatabaseCopy(backupDb);
  const latchBefore = before.status === "ok" ? before.latch : null;
  // The failed attempt's latch first (it is the newer); else the one the backup holds: never none.
  const latch = left.latch ?? latchBefore;

  const failedCopy = moveDatabaseAside(store, join(failedDir, store.id));
  const restoring = `${store.db}.restoring`;
  copyDurably(backupDb, restoring);
  renameSync(restoring, store.db);
  syncDirectory(store.dir);

  // The record first, as DurableLatch.save does: it needs no new blocks, so it is the copy most
  // likely to take the latch; the database follows in one transaction.
  const record = new LatchRecordFile(store.record);
  const reading = record.read();
  const storeId = (reading.status === "ok" ? reading.state.storeId : null) ?? left.storeId ?? randomUUID();
  if (latch) {
    const holds =
      reading.status === "ok" && reading.state.storeId === storeId && sameLatch(reading.state.latch, latch);
    try {
      if (!holds) {
        const state = { storeId, latch, cleared: null };
        if (reading.status === "ok") record.write(state);
        else record.create(state);
      }
    } catch (error) {
      problems.push(`the latch record could not take the carried latch: ${(error as Error).message}`);
    }
  }
  const recordExists = record.read().status === "ok";

  const maxSeqBefore = maxEventSeq(store.db);
  const carried = failedCopy ? readEventsAfter(failedCopy, maxSeqBefore) : { events: [], problem: null };
  if (carried.problem) problems.push(carried.problem);
  let db: Database.Database | null = null;
  try {
    db = new Database(store.db, { fileMustExist: true });
    db.pragma("synchronous = FULL");
    const connection = db;
    connection.transaction(() => {
      writeLatchRow(connection, latch);
      if (recordExists || reading.status !== "missing")
        writeLatchMarkers(connection, { storeId, recordCreated: recordExists });
      const insert = connection.prepare(
        "INSERT INTO events (seq, at_wall_ms, type, actor, detail) VALUES (?, ?, ?, ?, ?)",
      );
      for (const e of carried.events) insert.run(e.seq, e.at_wall_ms, e.type, e.actor, e.detail);
      insertEvent(connection, event);
    })();
  } catch (error) {
    problems.push(
      `the restored ${store.db} could not take the carried latch and events: ${(error as Error).message}`,
    );
  } finally {
    db?.close();
  }

  // Postcondition: a start loads the carried latch (or at least a latch, never less than carried).
  const after = latchLeft(store, nowWallMs);
  if (latch && !after.latch)
    problems.push(`the carried latch (${latch.kind}) is NOT in ${store.dir} after the restore`);
  else if (latch && !sameLatch(after.latch, latch))
    problems.push(`a start would load ${after.latch?.kind} instead of the carried ${latch.kind}`);
  // The restored file and whatever root's connections left are the gateway user's again.
  handBackToOwner(store.dir);
  return {
    id: store.id,
    action: "restored",
    failedCopy,
    latch: after.latch,
    latchedDuringAttempt: left.latch !== null && !sameLatch(left.latch, latchBefore),
    eventsCarried: carried.events.length,
    problems,
  };
}

function maxEventSeq(dbFile: string): number {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT coalesce(max(seq), 0) AS seq FROM events").get() as { seq: number }).seq;
  } finally {
    db.close();
  }
}

/**
 * A store the failed attempt created (there was none before it): its database goes aside, so that
 * the previous release starts on a store it can open. Its latch record stays when it holds a latch
 * (the previous release then starts latched, by the latch record's rule), and goes aside otherwise.
 */
export function moveCreatedStoreAside(
  store: StoreFiles,
  failedDir: string,
  nowWallMs: number,
): StoreRollback {
  const left = latchLeft(store, nowWallMs);
  const failedCopy = moveDatabaseAside(store, join(failedDir, store.id));
  if (!left.latch && existsSync(store.record)) {
    mkdirSync(join(failedDir, store.id), { recursive: true });
    renameSync(store.record, join(failedDir, store.id, basename(store.record)));
    rmSync(`${store.record}.new`, { force: true });
  }
  const after = latchLeft(store, nowWallMs);
  return {
    id: store.id,
    action: "moved-aside",
    failedCopy,
    latch: after.latch,
    latchedDuringAttempt: left.latch !== null,
    eventsCarried: 0,
    problems: left.latch && !after.latch ? [`the latch (${left.latch.kind}) of ${store.dir} was lost`] : [],
  };
}
