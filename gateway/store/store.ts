import type { StoredTxn } from "../core/corridor/resume.js";
import { readScheduleInForce, type ScheduleInForce, writeScheduleInForce } from "./schedule-records.js";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import type { Outcome, PreparedTxn } from "../core/corridor/participant.js";
import { invariant } from "../core/invariant.js";
import type { FaultLatch } from "../core/monitor.js";
import type { LatchDurability, LatchStore } from "../core/latch-store.js";
import { DurableLatch, inspectLatch, type LatchDatabase, type LatchInspection } from "./durable-latch.js";
import { StoreError } from "./errors.js";
import { LATCH_RECORD_FILE, LatchRecordFile, nodeRecordFs, type RecordFs } from "./latch-record.js";
import { latchDatabaseOf } from "./latch-table.js";
import { type AuditPage, type AuditPageRequest, readAuditPage } from "./audit-page.js";
import { boundEvents, boundOutbox, readEvents } from "./event-records.js";
import {
  appendHiRes,
  boundHiRes,
  type HiResQuery,
  readHiRes,
  reserveHiResSeqs,
  type StoredHiResEvent,
} from "./hires-records.js";
import { MIGRATIONS } from "./migrations.js";
import { readRunRecord, type RunRecord, writeRunRecord } from "./run-record.js";
import { handBackToOwner } from "./ownership.js";
import {
  forgetPlanOfAborted,
  type PlanInForce,
  readPlanBody,
  readPlanDigest,
  readPlanInForce,
  txnSource,
  writePlan,
  writePlanInForce,
} from "./plan-records.js";
import {
  boundTxns,
  type ParticipantRecord,
  readCommitted,
  readKeyring,
  readHighestToken,
  readLeaseEpoch,
  readLastTransaction,
  readParticipantRecord,
  readTransaction,
  type SqlAccess,
  writeLeaseEpoch,
  writeOutcome,
  writePrepared,
} from "./txn-records.js";

export type { TxnRow } from "./txn-records.js";
export type { PlanInForce } from "./plan-records.js";
export type { RunRecord } from "./run-record.js";

export { StoreError } from "./errors.js";

export const STORE_FILE = "gateway.db";

/** How a store is opened; the defaults are the real ones. */
export interface StoreOptions {
  /** The latch record's file operations: a test injects write failures here (the database is real). */
  readonly recordFs?: RecordFs;
  /** Wall clock for the latch's own entries (a synthesized store-lost latch, who cleared and when). */
  readonly nowWallMs?: () => number;
}

export interface StoreLimits {
  /** Audit events kept; older ones are pruned (counted). */
  readonly maxEvents: number;
  /** Messages waiting for the broker; past it the oldest are dropped (counted). */
  readonly maxOutbox: number;
  /**
   * Finished transactions kept (the newest; a PREPARED one is never dropped); older ones are pruned
   * (counted). Well above the participant's tombstones (MAX_TOMBSTONES) and a restart's resumption.
   */
  readonly maxFinishedTxns: number;
  /** High-resolution event log rows kept (docs/event-log.md: weeks at a fixed-time intersection's rate). */
  readonly maxHiResEvents: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = {
  maxEvents: 100_000,
  maxOutbox: 10_000,
  maxFinishedTxns: 1000,
  maxHiResEvents: 1_500_000,
};

export interface StoredEvent {
  readonly seq: number;
  readonly atWallMs: number;
  readonly type: string;
  readonly actor: string | null;
  readonly detail: Record<string, unknown>;
}

export interface OutboxMessage {
  readonly seq: number;
  readonly topic: string;
  readonly payload: string;
}

/**
 * One transaction whose commit is not synced to disk (synchronous NORMAL, in WAL mode): atomic, and
 * durable with the next synced commit of the same file. The connection is FULL again afterwards,
 * whatever happens.
 */
export function unsyncedTransaction<T>(db: Database.Database, writes: () => T): T {
  db.pragma("synchronous = NORMAL");
  try {
    return db.transaction(writes)();
  } finally {
    db.pragma("synchronous = FULL");
  }
}

/**
 * One gateway's durable state in one SQLite file (WAL, synchronous FULL: every commit is on disk
 * when it returns): the latched fault, the plans received and in force, the audit trail of events,
 * and the outbox of messages that wait for the broker. The latched fault has a second copy in the
 * latch record beside the file (`latch.rec`): see DurableLatch for how the two are kept and read.
 */
export class GatewayStore implements LatchStore {
  private readonly db: Database.Database;
  readonly file: string;
  /** Compiled once: the store runs the same few dozen statements thousands of times. Bounded by the code's SQL. */
  private readonly statements = new Map<string, Database.Statement>();
  /** Transactions open through `forced` / `lazily` (nesting: only the outermost one commits). */
  private depth = 0;
  private lazyDepth = 0;
  /**
   * The first outbox message written by an unforced transaction since the last forced write, or null:
   * from it on, the outbox waits (a power cut could still take it back, and its sequence number would
   * then be given to another event after the broker has passed the first one on).
   */
  private firstUnsyncedSeq: number | null = null;
  /** Whether the file had the store's schema before this open migrated it (false: new, 0 bytes or emptied). */
  private hadSchemaAtOpen = false;
  private readonly latch: DurableLatch;

  private constructor(
    file: string,
    private readonly limits: StoreLimits,
    options: StoreOptions,
  ) {
    this.file = file;
    try {
      this.db = new Database(file);
    } catch (error) {
      throw new StoreError(`cannot open the store ${file}: ${(error as Error).message}`);
    }
    try {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
      this.db.pragma("busy_timeout = 2000");
      this.migrate();
      // Whatever a crashed predecessor wrote without an fsync is in the file, maybe not yet on disk:
      // one forced write puts it there before the outbox may send any of it.
      this.forced(() => this.addToCounter("store_opens", 1));
    } catch (error) {
      this.db.close();
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        `the store ${file} is unusable: ${(error as Error).message}. The gateway will not start without it (its latched fault may be in it): restore it from a backup, or move it aside after checking the intersection`,
      );
    }
    try {
      const record = new LatchRecordFile(
        join(dirname(file), LATCH_RECORD_FILE),
        options.recordFs ?? nodeRecordFs,
      );
      this.latch = new DurableLatch(record, this.latchDatabase(), options.nowWallMs ?? Date.now);
    } catch (error) {
      this.db.close();
      throw new StoreError(`cannot read the latched fault of ${file}: ${(error as Error).message}`);
    }
    handBackToOwner(dirname(file));
  }

  /** Opens (creating if needed) the store of one gateway under its data directory. */
  static open(
    dataDir: string,
    limits: StoreLimits = DEFAULT_STORE_LIMITS,
    options: StoreOptions = {},
  ): GatewayStore {
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (error) {
      throw new StoreError(`cannot create the data directory ${dataDir}: ${(error as Error).message}`);
    }
    return new GatewayStore(join(dataDir, STORE_FILE), limits, options);
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * One transaction, on disk when it returns (synchronous FULL). Every write before it, forced or not,
   * is on disk with it: the WAL is one file, written in order, and this commit syncs it.
   */
  private forced<T>(writes: () => T): T {
    this.depth++;
    try {
      const result = this.db.transaction(writes)();
      if (this.depth === 1 && this.lazyDepth === 0) this.firstUnsyncedSeq = null;
      return result;
    } finally {
      this.depth--;
    }
  }

  /**
   * One transaction that is atomic but not yet durable (synchronous NORMAL: no fsync): a power cut
   * may take it back, never half of it. It becomes durable with the next forced write, or with
   * `syncLazyWrites`. For what can be lost or written again: informational audit entries, delivery
   * marks. Inside a forced transaction it is simply part of it.
   */
  lazily<T>(writes: () => T): T {
    if (this.depth > 0) return this.forced(writes);
    this.depth++;
    this.lazyDepth++;
    try {
      return unsyncedTransaction(this.db, writes);
    } finally {
      this.depth--;
      this.lazyDepth--;
    }
  }

  /** The connection's current `synchronous` setting (2 = FULL): FULL whenever no `lazily` runs. */
  get synchronousSetting(): number {
    return this.db.pragma("synchronous", { simple: true }) as number;
  }

  /** True when unforced writes hold outbox messages that wait for `syncLazyWrites`. */
  get hasUnsyncedOutbox(): boolean {
    return this.firstUnsyncedSeq !== null;
  }

  /** Makes every unforced write durable (one forced write), so that the outbox may send them. */
  syncLazyWrites(): void {
    if (this.firstUnsyncedSeq === null) return;
    this.forced(() => this.addToCounter("lazy_syncs", 1));
  }

  get schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  private migrate(): void {
    const current = this.schemaVersion;
    this.hadSchemaAtOpen = current > 0;
    if (current > MIGRATIONS.length)
      throw new StoreError(
        `the store ${this.file} has schema version ${current}, newer than this greenwave knows (${MIGRATIONS.length}): upgrade greenwave or restore a matching backup`,
      );
    for (let version = current; version < MIGRATIONS.length; version++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[version] as string);
        this.db.pragma(`user_version = ${version + 1}`);
      })();
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
    handBackToOwner(dirname(this.file));
  }

  // --- meta counters ---

  private counter(key: string): number {
    const row = this.statement("SELECT value FROM meta WHERE key = ?").get(key) as
      { value: string } | undefined;
    return row ? Number(row.value) : 0;
  }

  /** Counters only grow, by whole amounts, and stay exact (below 2^53). */
  private addToCounter(key: string, by: number): void {
    invariant(Number.isSafeInteger(by) && by > 0, () => `counter ${key} increased by ${by}`);
    const row = this.statement(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value RETURNING value",
    ).get(key, String(by)) as { value: string };
    const value = Number(row.value);
    invariant(
      Number.isSafeInteger(value) && value >= by,
      () => `counter ${key} is ${row.value} after adding ${by}`,
    );
  }

  get outboxDropped(): number {
    return this.counter("outbox_dropped");
  }

  get eventsPruned(): number {
    return this.counter("events_pruned");
  }

  get hiResPruned(): number {
    return this.counter("hires_pruned");
  }

  // --- the high-resolution event log (hires-records.ts) ---

  /** The next `count` sequence numbers, on disk before they are handed out (a forced write). */
  reserveHiResSeqs(count: number): { first: number; last: number } {
    return this.forced(() => reserveHiResSeqs(this.sql, count));
  }

  /**
   * One batch of rows, not synced (the log is informational: a power cut may take back the last
   * batch, never half of it), pruned to the bound. Returns how many old rows went.
   */
  appendHiRes(rows: readonly StoredHiResEvent[]): number {
    return this.lazily(() => {
      appendHiRes(this.sql, rows);
      return boundHiRes(this.sql, this.limits.maxHiResEvents);
    });
  }

  hiResEvents(query: HiResQuery): StoredHiResEvent[] {
    return readHiRes(this.sql, query);
  }

  // --- latch (LatchStore): two copies, this database and the latch record (DurableLatch) ---

  /** What a restart would load: the union of both copies, or a store-lost latch (see DurableLatch). */
  load(): FaultLatch | null {
    return this.latch.load();
  }

  /** Record, then database; throws a StoreError naming the copy that failed (see `latchDurability`). */
  save(latch: FaultLatch): void {
    this.latch.save(latch);
  }

  clear(by = "an operator"): void {
    this.latch.clear(by);
  }

  /** Whether the latch state in force would survive a restart, which copies hold it, and what failed. */
  get latchDurability(): LatchDurability {
    return this.latch.durability;
  }

  /** What this open found about the latch copies (a lost store, a corrupt slot, an upgrade): log them. */
  get latchFindings(): readonly string[] {
    return this.latch.findings;
  }

  get latchRecordFile(): string {
    return this.latch.files.record;
  }

  /** The database's side of the latch: its row and the markers that tie it to the latch record. */
  private latchDatabase(): LatchDatabase {
    return latchDatabaseOf(this.db, this.file, this.hadSchemaAtOpen, (writes) => this.forced(writes));
  }

  // --- plans (plan-records.ts) ---

  /** A plan received, with the digest its body carries: one content per (id, version), see `writePlan`. */
  recordPlan(planId: string, version: number, body: unknown, source: string, atWallMs: number): void {
    writePlan(this.sql, planId, version, body, source, atWallMs);
  }

  planBody(planId: string, version: number): unknown {
    return readPlanBody(this.sql, planId, version);
  }

  /** The content digest stored with a plan: null for one stored before digests, or not stored at all. */
  planDigest(planId: string, version: number): string | null {
    return readPlanDigest(this.sql, planId, version);
  }

  /** Runs `writes` as one transaction: all of them are durable, or none. */
  atomically<T>(writes: () => T): T {
    return this.forced(writes);
  }

  setPlanInForce(plan: PlanInForce): void {
    writePlanInForce(this.sql, plan);
  }

  planInForce(): PlanInForce | null {
    return readPlanInForce(this.sql);
  }

  /** Forced: the schedule that governs and the manual override must survive a restart. */
  setScheduleInForce(schedule: ScheduleInForce): void {
    this.forced(() => writeScheduleInForce(this.sql, schedule));
  }

  scheduleInForce(): ScheduleInForce | null {
    return readScheduleInForce(this.sql);
  }

  // --- how the last run ended (run-record.ts) ---

  /** The record of the last (or the current) run on this store; null before the first run that kept one. */
  runRecord(): RunRecord | null {
    return readRunRecord(this.sql);
  }

  /** Forced: a restart proves its start-up from it, so it is on disk before the lamps are touched. */
  setRunRecord(record: RunRecord): void {
    this.forced(() => writeRunRecord(this.sql, record));
  }

  // --- audit trail and outbox ---

  /**
   * Appends an event to the audit trail and, in the same transaction, queues its message for the
   * broker (built from the event's sequence number by `message`). Returns the event.
   */
  appendEvent(
    event: Omit<StoredEvent, "seq">,
    message: ((seq: number) => { topic: string; payload: string }) | null,
  ): StoredEvent {
    return this.forced(() => {
      const result = this.statement(
        "INSERT INTO events (at_wall_ms, type, actor, detail) VALUES (?, ?, ?, ?)",
      ).run(event.atWallMs, event.type, event.actor, JSON.stringify(event.detail));
      const seq = Number(result.lastInsertRowid);
      if (message) {
        const { topic, payload } = message(seq);
        this.statement("INSERT INTO outbox (seq, topic, payload) VALUES (?, ?, ?)").run(seq, topic, payload);
        if (this.lazyDepth > 0 && this.firstUnsyncedSeq === null) this.firstUnsyncedSeq = seq;
        boundOutbox(this.sql, this.limits.maxOutbox);
      }
      boundEvents(this.sql, this.limits.maxEvents, seq);
      return { ...event, seq };
    });
  }

  events(afterSeq = 0, limit = 1000): StoredEvent[] {
    return readEvents(this.sql, afterSeq, limit);
  }

  /** A bounded page of the audit trail, newest first (audit-page.ts): the `audit` command's answer. */
  auditPage(request: AuditPageRequest): AuditPage {
    return readAuditPage((sql) => this.statement(sql), request);
  }

  /** The oldest messages waiting for the broker, in order: only those on disk (see `lazily`). */
  outbox(limit: number): OutboxMessage[] {
    return this.statement("SELECT seq, topic, payload FROM outbox WHERE seq < ? ORDER BY seq LIMIT ?").all(
      this.firstUnsyncedSeq ?? Number.MAX_SAFE_INTEGER,
      limit,
    ) as OutboxMessage[];
  }

  outboxDepth(): number {
    return (this.statement("SELECT count(*) AS n FROM outbox").get() as { n: number }).n;
  }

  /**
   * The broker has acknowledged these messages. Not forced: a mark lost in a power cut only sends
   * the same message again (same sequence number, which receivers drop as a duplicate).
   */
  delivered(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.lazily(() => {
      const remove = this.statement("DELETE FROM outbox WHERE seq = ?");
      for (const seq of seqs) remove.run(seq);
    });
  }

  // --- corridor protocol ---

  leaseEpoch(): number {
    return readLeaseEpoch(this.sql);
  }

  /** Forced: no token of this epoch may be handed out before it is on disk. */
  persistLeaseEpoch(epoch: number): void {
    this.forced(() => writeLeaseEpoch(this.sql, epoch));
  }

  highestToken(): number {
    return readHighestToken(this.sql);
  }

  /** PREPARED, the plan it would take, and the new fencing floor: one forced transaction. */
  persistPrepared(txn: PreparedTxn, plan: { body: unknown }, highestToken: number, atWallMs: number): void {
    this.forced(() => {
      writePrepared(this.sql, txn, highestToken, atWallMs);
      // A cancel carries no plan (core/corridor/plan-cancel.ts).
      if (plan.body !== null)
        this.recordPlan(txn.plan.planId, txn.plan.version, plan.body, txnSource(txn.txnId), atWallMs);
    });
  }

  /**
   * The outcome of a prepared transaction, or a refusal (a row with no coordinator) of one never
   * prepared here; lazy when the protocol allows it (presumed abort: an abort needs no forced write).
   */
  persistOutcome(
    txnId: string,
    outcome: Outcome,
    atWallMs: number,
    forced = true,
    signature: string | null = null,
  ): void {
    (forced ? this.forced.bind(this) : this.lazily.bind(this))(() => {
      writeOutcome(this.sql, txnId, outcome, atWallMs, signature);
      // A plan first received with an aborted change was never taken anywhere: forgotten with the
      // change, so that its (id, version) is not held to a content nobody runs (plan-identity.ts).
      if (outcome === "aborted") forgetPlanOfAborted(this.sql, txnId);
      boundTxns(this.sql, this.limits.maxFinishedTxns);
    });
  }

  get txnsPruned(): number {
    return this.counter("txns_pruned");
  }

  /** What the participant restarts from: its fencing floor, the transaction it is in doubt about, its tombstones. */
  participantRecord(maxTombstones: number): ParticipantRecord {
    return readParticipantRecord(this.sql, this.highestToken(), maxTombstones);
  }

  transaction(txnId: string): (PreparedTxn & { phase: string; cancelledBy: string | null }) | null {
    return readTransaction(this.sql, txnId);
  }

  /** The corridor's keyring in force here (core/corridor/keyring.ts), as stored; null: none committed. */
  committedKeyring(): unknown {
    return readKeyring(this.sql);
  }

  /** The newest committed transactions (at most `limit`), most recently written first: what a restart resumes. */
  committedTransactions(limit: number): StoredTxn[] {
    return readCommitted(this.sql, limit);
  }

  /** The newest finished or pending transaction, for the status. */
  lastTransaction(): { txnId: string; phase: string; atWallMs: number } | null {
    return readLastTransaction(this.sql);
  }

  /** The table access the record modules use (txn-records.ts). */
  private get sql(): SqlAccess {
    return {
      statement: (sql) => this.statement(sql),
      addToCounter: (key, by) => this.addToCounter(key, by),
    };
  }
}

/** What each copy of a stopped gateway's latch says, read only (`greenwave fault show`). */
export function inspectStoredLatch(dataDir: string, nowWallMs = Date.now()): LatchInspection {
  return inspectLatch(
    { record: join(dataDir, LATCH_RECORD_FILE), database: join(dataDir, STORE_FILE) },
    nowWallMs,
  );
}
