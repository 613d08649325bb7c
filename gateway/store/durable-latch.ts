import { randomUUID } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { handBackToOwner } from "./ownership.js";
import Database from "better-sqlite3";
import type { FaultLatch } from "../core/monitor.js";
import type { LatchCopy, LatchDurability } from "../core/latch-store.js";
import { StoreError } from "./errors.js";
import { LatchRecordFile, type RecordReading, type RecordState } from "./latch-record.js";
import { readLatchMarkers, readLatchRow } from "./latch-table.js";

/**
 * The latched fault kept in two copies: the latch record (latch.rec, preallocated, written in place)
 * and the SQLite store (gateway.db). The rules, in one place:
 * - **Load is the union.** Latched if either copy says so; the record's content wins for the message.
 *   Conflicts resolve towards flash: a latch is never dropped because one copy disagrees.
 * - **A lost store latches.** The record proves that this gateway has run before, so a database beside
 *   it that is missing, empty or not the one the record was written with (another store id) means the
 *   store was lost: a `store-lost` fault, until an operator checks and resets it. So does a record that
 *   is unreadable in both slots, or one that is missing although the database says it was created.
 * - **Save writes the record first**, then the database: the record needs no new blocks, so on a full
 *   disk it still takes the latch. Any copy that fails makes save throw; `durability` says whether a
 *   restart would still find the latch (one copy suffices, by the union rule).
 * - **Clear writes both.** A clear that reaches one copy only is undone at the next start (the union):
 *   the safe direction.
 */

export type DatabaseReading =
  | { readonly status: "missing" }
  /** A database with no history: new, 0 bytes, or without the store's schema. */
  | { readonly status: "empty"; readonly detail: string }
  | {
      readonly status: "ok";
      /** null: written by a greenwave before the latch record (or by none that knew this record). */
      readonly storeId: string | null;
      readonly recordCreated: boolean;
      readonly latch: FaultLatch | null;
    }
  | { readonly status: "unreadable"; readonly problem: string };

/** The database's side of the latch, as the durable latch needs it (GatewayStore provides it). */
export interface LatchDatabase {
  readonly file: string;
  read(): DatabaseReading;
  /** One forced transaction: the latch row and, when given, the markers that tie it to its record. */
  write(latch: FaultLatch | null, markers?: { storeId: string; recordCreated: boolean }): void;
}

export interface LatchFiles {
  readonly record: string;
  readonly database: string;
}

export interface LatchVerdict {
  readonly latch: FaultLatch | null;
  /** The identity both copies carry: the record's when it is readable, else the database's; null for a new store. */
  readonly storeId: string | null;
  /** What an operator should know about the copies: a lost store, a corrupt slot, an upgrade. */
  readonly findings: readonly string[];
}

/** The latch a restart takes from what the two copies say (a pure function: `fault show` uses it too). */
export function reconcileLatch(
  record: RecordReading,
  database: DatabaseReading,
  files: LatchFiles,
  nowWallMs: number,
): LatchVerdict {
  if (record.status === "ok") return withRecord(record, database, files, nowWallMs);
  if (record.status === "missing") return withoutRecord(database, files, nowWallMs);
  const problem = `the latch record ${files.record} is unreadable: ${record.problem}`;
  const latch = database.status === "ok" ? database.latch : null;
  return {
    latch: latch ?? storeLost(`${problem}; a latched fault may have been in it`, nowWallMs),
    storeId: database.status === "ok" ? database.storeId : null,
    findings: [problem],
  };
}

function withRecord(
  record: Extract<RecordReading, { status: "ok" }>,
  database: DatabaseReading,
  files: LatchFiles,
  nowWallMs: number,
): LatchVerdict {
  const findings: string[] = [];
  if ("problem" in record.otherSlot)
    findings.push(
      `the latch record ${files.record}: slot ${record.slot === "A" ? "B" : "A"} is ${record.otherSlot.problem}; slot ${record.slot} (seq ${record.seq}) is used`,
    );
  const recordLatch = record.state.latch;
  const storeId = record.state.storeId;
  const loss = databaseLoss(database, storeId, files);
  if (loss === null) {
    const databaseLatch = (database as Extract<DatabaseReading, { status: "ok" }>).latch;
    if (recordLatch && !databaseLatch)
      findings.push(`${files.database} does not hold the latch ${files.record} holds (a write that failed?)`);
    if (databaseLatch && !recordLatch)
      findings.push(
        `${files.database} holds a latch ${files.record} does not (a clear that did not finish?)`,
      );
    return { latch: recordLatch ?? databaseLatch, storeId, findings };
  }
  findings.push(loss);
  const latch =
    recordLatch ??
    storeLost(`${loss}, although ${basename(files.record)} shows this gateway has run before`, nowWallMs);
  return { latch, storeId, findings };
}

/** Why the database beside a readable record is not the store that record belongs to; null when it is. */
function databaseLoss(database: DatabaseReading, storeId: string, files: LatchFiles): string | null {
  switch (database.status) {
    case "missing":
      return `${files.database} is missing`;
    case "empty":
      return `${files.database} is empty (${database.detail})`;
    case "unreadable":
      return `${files.database} is unreadable (${database.problem})`;
    case "ok":
      if (database.storeId === storeId) return null;
      return database.storeId === null
        ? `${files.database} has no store id (replaced by an older or foreign copy?)`
        : `${files.database} belongs to another store (id ${database.storeId}, the record says ${storeId})`;
  }
}

function withoutRecord(database: DatabaseReading, files: LatchFiles, nowWallMs: number): LatchVerdict {
  switch (database.status) {
    case "missing":
    case "empty":
      return { latch: null, storeId: null, findings: [] }; // a first start
    case "unreadable": {
      const problem = `${files.database} is unreadable (${database.problem}) and there is no latch record`;
      return { latch: storeLost(problem, nowWallMs), storeId: null, findings: [problem] };
    }
    case "ok": {
      if (!database.recordCreated)
        return {
          latch: database.latch,
          storeId: database.storeId,
          findings: [
            `no latch record yet (a store from an older greenwave, or a first start cut short): it is made from ${files.database}`,
          ],
        };
      const problem = `the latch record ${files.record} is missing although ${basename(files.database)} says it was created`;
      return {
        latch: database.latch ?? storeLost(`${problem}; a latched fault may have been in it`, nowWallMs),
        storeId: database.storeId,
        findings: [problem],
      };
    }
  }
}

function storeLost(reason: string, atWallMs: number): FaultLatch {
  return {
    kind: "store-lost",
    groups: [],
    message: `the gateway's store was lost or emptied (${reason}); check the intersection and the store, then reset the fault`,
    atWallMs,
  };
}

export function sameLatch(a: FaultLatch | null, b: FaultLatch | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.kind === b.kind &&
    a.message === b.message &&
    a.atWallMs === b.atWallMs &&
    a.groups.length === b.groups.length &&
    a.groups.every((group, i) => group === b.groups[i])
  );
}

/** A store's latch in its two copies: the LatchStore part of GatewayStore. */
export class DurableLatch {
  private readonly storeId: string;
  private readonly openedAtWallMs: number;
  private durabilityNow: LatchDurability;
  /** What the start found and repaired: for the gateway's start-up log. */
  readonly findings: readonly string[];

  /**
   * Reads both copies, takes the verdict, and makes both copies hold it, so that a synthesized
   * `store-lost` latch is itself durable and the next start sees consistent copies. A repair that
   * fails is reported, never thrown: the verdict came from the disk, and any partial repair keeps it
   * (by the union rule), so a restart would reach the same latch.
   */
  constructor(
    private readonly record: LatchRecordFile,
    private readonly database: LatchDatabase,
    private readonly now: () => number = Date.now,
  ) {
    this.openedAtWallMs = now();
    const recordReading = record.read();
    const databaseReading = database.read();
    const verdict = reconcileLatch(recordReading, databaseReading, this.files, this.openedAtWallMs);
    this.storeId = verdict.storeId ?? randomUUID();
    const repair = this.repair(verdict.latch, recordReading, databaseReading);
    this.findings = [...verdict.findings, ...repair.problems];
    this.durabilityNow = { durable: true, copies: repair.copies, problem: joined(repair.problems) };
  }

  get files(): LatchFiles {
    return { record: this.record.file, database: this.database.file };
  }

  get durability(): LatchDurability {
    return this.durabilityNow;
  }

  /** What a restart would load now: both copies read again. */
  load(): FaultLatch | null {
    return reconcileLatch(this.record.read(), this.database.read(), this.files, this.openedAtWallMs).latch;
  }

  save(latch: FaultLatch): void {
    // The record first: it is overwritten in place and needs no new blocks, so it is the copy most
    // likely to take the latch when the disk is full or the database is broken.
    const recordProblem = attempt(() => this.record.write({ storeId: this.storeId, latch, cleared: null }));
    const databaseProblem = attempt(() => this.database.write(latch));
    const copies = copiesWithout(recordProblem, databaseProblem);
    const problem = joined([recordProblem, databaseProblem]);
    this.durabilityNow = { durable: copies.length > 0, copies, problem };
    if (problem === null) return;
    throw new StoreError(
      copies.length === 0
        ? `the latched fault (${latch.kind}) is NOT stored: ${problem}. A restart now would come up without it: the gateway keeps it and stays in flash; fix the storage under ${this.directory} before restarting`
        : `the latched fault (${latch.kind}) is stored only in ${this.fileOf(copies[0] as LatchCopy)}: ${problem}. A restart still finds it; fix the storage under ${this.directory}`,
    );
  }

  clear(by: string): void {
    const cleared = { by, atWallMs: this.now() };
    const recordProblem = attempt(() => this.record.write({ storeId: this.storeId, latch: null, cleared }));
    const databaseProblem = attempt(() => this.database.write(null));
    const copies = copiesWithout(recordProblem, databaseProblem);
    const problem = joined([recordProblem, databaseProblem]);
    // Nothing can be lost by a clear that did not stick: a restart latches again, the safe direction.
    this.durabilityNow = { durable: true, copies, problem };
    if (problem === null) return;
    const stale = (["record", "database"] as const).filter((copy) => !copies.includes(copy));
    throw new StoreError(
      `the fault is cleared here, but ${stale.map((copy) => this.fileOf(copy)).join(" and ")} still hold${stale.length === 1 ? "s" : ""} it (${problem}): a restart would latch it again. Fix the storage under ${this.directory}, then clear it again`,
    );
  }

  private get directory(): string {
    return dirname(this.record.file);
  }

  private fileOf(copy: LatchCopy): string {
    return copy === "record" ? this.record.file : this.database.file;
  }

  /**
   * Makes both copies hold `latch`, in an order that is safe to cut anywhere:
   * 1. the database first, its latch row and markers in one transaction (markers without the latch
   *    would make a restart trust a database that lacks a synthesized latch);
   * 2. then the record (created if missing or unreadable);
   * 3. then, on a first start or an upgrade, the database's mark that the record exists. Cut before
   *    this, a restart sees a database with no such mark and simply makes the record again, instead
   *    of taking a missing record for a lost one.
   */
  private repair(
    latch: FaultLatch | null,
    record: RecordReading,
    database: DatabaseReading,
  ): { copies: LatchCopy[]; problems: string[] } {
    const copies: LatchCopy[] = [];
    const problems: string[] = [];
    const wasMarked = record.status !== "missing" || (database.status === "ok" && database.recordCreated);
    const markers = { storeId: this.storeId, recordCreated: wasMarked };
    if (databaseHolds(database, latch, markers)) copies.push("database");
    else
      collect(
        attempt(() => this.database.write(latch, markers)),
        "database",
        copies,
        problems,
      );

    if (
      record.status === "ok" &&
      record.state.storeId === this.storeId &&
      sameLatch(record.state.latch, latch)
    )
      copies.push("record");
    else {
      const state: RecordState = {
        storeId: this.storeId,
        latch,
        cleared: record.status === "ok" ? record.state.cleared : null,
      };
      collect(
        attempt(() => (record.status === "ok" ? this.record.write(state) : this.record.create(state))),
        "record",
        copies,
        problems,
      );
    }

    if (!wasMarked && copies.includes("record") && copies.includes("database")) {
      const problem = attempt(() => this.database.write(latch, { ...markers, recordCreated: true }));
      if (problem) problems.push(problem);
    }
    return { copies, problems };
  }
}

function databaseHolds(
  database: DatabaseReading,
  latch: FaultLatch | null,
  markers: { storeId: string; recordCreated: boolean },
): boolean {
  return (
    database.status === "ok" &&
    database.storeId === markers.storeId &&
    database.recordCreated === markers.recordCreated &&
    sameLatch(database.latch, latch)
  );
}

function collect(problem: string | null, copy: LatchCopy, copies: LatchCopy[], problems: string[]): void {
  if (problem === null) copies.push(copy);
  else problems.push(problem);
}

function attempt(write: () => void): string | null {
  try {
    write();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

function copiesWithout(recordProblem: string | null, databaseProblem: string | null): LatchCopy[] {
  const copies: LatchCopy[] = [];
  if (recordProblem === null) copies.push("record");
  if (databaseProblem === null) copies.push("database");
  return copies;
}

function joined(problems: readonly (string | null)[]): string | null {
  const present = problems.filter((p): p is string => p !== null);
  return present.length > 0 ? present.join("; ") : null;
}

/** What one copy and the other say, and the verdict: for `fault show`, which writes nothing. */
export interface LatchInspection extends LatchVerdict {
  readonly files: LatchFiles;
  readonly record: RecordReading;
  readonly database: DatabaseReading;
}

export function inspectLatch(files: LatchFiles, nowWallMs: number): LatchInspection {
  const record = new LatchRecordFile(files.record).read();
  const database = readDatabaseCopy(files.database);
  return { files, record, database, ...reconcileLatch(record, database, files, nowWallMs) };
}

/** The database's copy, read only: a file that is absent, 0 bytes or without schema is reported as such. */
export function readDatabaseCopy(file: string): DatabaseReading {
  if (!existsSync(file)) return { status: "missing" };
  if (statSync(file).size === 0) return { status: "empty", detail: "0 bytes" };
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (error) {
    return { status: "unreadable", problem: (error as Error).message };
  }
  try {
    if ((db.pragma("user_version", { simple: true }) as number) === 0)
      return { status: "empty", detail: "no schema" };
    return { status: "ok", ...readLatchMarkers(db), latch: readLatchRow(db) };
  } catch (error) {
    return { status: "unreadable", problem: (error as Error).message };
  } finally {
    db.close();
    handBackToOwner(dirname(file));
  }
}
