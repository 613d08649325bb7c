import type { StoredTxn } from "../core/corridor/resume.js";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import type { Outcome, PreparedTxn, Tombstone } from "../core/corridor/participant.js";
import { invariant } from "../core/invariant.js";
import type { FaultLatch } from "../core/monitor.js";
import type { LatchDurability, LatchStore } from "../shell/latch-store.js";
import {
  type DatabaseReading,
  DurableLatch,
  inspectLatch,
  type LatchDatabase,
  type LatchInspection,
} from "./durable-latch.js";
import { StoreError } from "./errors.js";
import { LATCH_RECORD_FILE, LatchRecordFile, nodeRecordFs, type RecordFs } from "./latch-record.js";
import { readLatchMarkers, readLatchRow, writeLatchMarkers, writeLatchRow } from "./latch-table.js";
import { MIGRATIONS } from "./migrations.js";

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
}

export const DEFAULT_STORE_LIMITS: StoreLimits = {
  maxEvents: 100_000,
  maxOutbox: 10_000,
  maxFinishedTxns: 1000,
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

export interface PlanInForce {
  readonly planId: string;
  readonly version: number;
  readonly sinceWallMs: number;
  /** The instant of the committed change that brought it in force; null for a configured plan. */
  readonly activationWallMs: number | null;
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
  }

  // --- meta counters ---

  private counter(key: string): number {
    const row = this.statement("SELECT value FROM meta WHERE key = ?").get(key) as
      { value: string } | undefined;
    return row ? Number(row.value) : 0;
  }

  private addToCounter(key: string, by: number): void {
    this.statement(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
    ).run(key, String(by));
  }

  get outboxDropped(): number {
    return this.counter("outbox_dropped");
  }

  get eventsPruned(): number {
    return this.counter("events_pruned");
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
    return {
      file: this.file,
      read: (): DatabaseReading => {
        const markers = readLatchMarkers(this.db);
        // The migrations have just created every table of an emptied file: only the schema this open
        // found, or markers written by an earlier run, tell a store with a history from an empty one.
        if (!this.hadSchemaAtOpen && markers.storeId === null)
          return { status: "empty", detail: "no schema when it was opened: new, 0 bytes or emptied" };
        return { status: "ok", ...markers, latch: readLatchRow(this.db) };
      },
      write: (latch, markers) => {
        try {
          this.forced(() => {
            writeLatchRow(this.db, latch);
            if (markers) writeLatchMarkers(this.db, markers);
          });
        } catch (error) {
          throw new StoreError(`cannot store the latch in ${this.file}: ${(error as Error).message}`);
        }
      },
    };
  }

  // --- plans ---

  recordPlan(planId: string, version: number, body: unknown, source: string, atWallMs: number): void {
    this.statement(
      "INSERT OR IGNORE INTO plans (plan_id, version, body, source, received_at_ms) VALUES (?, ?, ?, ?, ?)",
    ).run(planId, version, JSON.stringify(body), source, atWallMs);
  }

  planBody(planId: string, version: number): unknown {
    const row = this.statement("SELECT body FROM plans WHERE plan_id = ? AND version = ?").get(
      planId,
      version,
    ) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as unknown) : null;
  }

  /** Runs `writes` as one transaction: all of them are durable, or none. */
  atomically<T>(writes: () => T): T {
    return this.forced(writes);
  }

  setPlanInForce(plan: PlanInForce): void {
    this.statement(
      "INSERT OR REPLACE INTO plan_in_force (id, plan_id, version, since_wall_ms, activation_wall_ms) VALUES (1, ?, ?, ?, ?)",
    ).run(plan.planId, plan.version, plan.sinceWallMs, plan.activationWallMs);
  }

  planInForce(): PlanInForce | null {
    const row = this.statement(
      "SELECT plan_id, version, since_wall_ms, activation_wall_ms FROM plan_in_force WHERE id = 1",
    ).get() as
      | { plan_id: string; version: number; since_wall_ms: number; activation_wall_ms: number | null }
      | undefined;
    return row
      ? {
          planId: row.plan_id,
          version: row.version,
          sinceWallMs: row.since_wall_ms,
          activationWallMs: row.activation_wall_ms,
        }
      : null;
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
        this.boundOutbox();
      }
      this.boundEvents(seq);
      return { ...event, seq };
    });
  }

  private boundOutbox(): void {
    const { n } = this.statement("SELECT count(*) AS n FROM outbox").get() as { n: number };
    const excess = n - this.limits.maxOutbox;
    if (excess <= 0) return;
    this.statement("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)").run(
      excess,
    );
    this.addToCounter("outbox_dropped", excess);
  }

  private boundEvents(lastSeq: number): void {
    // Pruning in batches keeps the check cheap: count only when the newest seq says it may be needed.
    if (lastSeq <= this.limits.maxEvents || lastSeq % 100 !== 0) return;
    const result = this.statement("DELETE FROM events WHERE seq <= ?").run(lastSeq - this.limits.maxEvents);
    if (result.changes > 0) this.addToCounter("events_pruned", result.changes);
  }

  events(afterSeq = 0, limit = 1000): StoredEvent[] {
    const rows = this.statement(
      "SELECT seq, at_wall_ms, type, actor, detail FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
    ).all(afterSeq, limit) as {
      seq: number;
      at_wall_ms: number;
      type: string;
      actor: string | null;
      detail: string;
    }[];
    return rows.map((row) => ({
      seq: row.seq,
      atWallMs: row.at_wall_ms,
      type: row.type,
      actor: row.actor,
      detail: JSON.parse(row.detail) as Record<string, unknown>,
    }));
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
    const row = this.statement("SELECT epoch FROM lease_epoch WHERE id = 1").get() as
      { epoch: number } | undefined;
    return row?.epoch ?? 0;
  }

  /** Forced: no token of this epoch may be handed out before it is on disk. */
  persistLeaseEpoch(epoch: number): void {
    this.forced(() =>
      this.statement("INSERT OR REPLACE INTO lease_epoch (id, epoch) VALUES (1, ?)").run(epoch),
    );
  }

  highestToken(): number {
    const row = this.statement("SELECT highest_token FROM fencing WHERE id = 1").get() as
      { highest_token: number } | undefined;
    return row?.highest_token ?? 0;
  }

  /** PREPARED, the plan it would take, and the new fencing floor: one forced transaction. */
  persistPrepared(txn: PreparedTxn, plan: { body: unknown }, highestToken: number, atWallMs: number): void {
    this.forced(() => {
      this.statement(
        "INSERT OR REPLACE INTO txns (txn_id, coordinator, token, participants, plan_id, plan_version, activation_wall_ms, phase, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'prepared', ?)",
      ).run(
        txn.txnId,
        txn.coordinator,
        txn.token,
        JSON.stringify(txn.participants),
        txn.plan.planId,
        txn.plan.version,
        txn.activationWallMs,
        atWallMs,
      );
      this.recordPlan(txn.plan.planId, txn.plan.version, plan.body, `txn ${txn.txnId}`, atWallMs);
      this.statement("INSERT OR REPLACE INTO fencing (id, highest_token) VALUES (1, ?)").run(highestToken);
    });
  }

  /** The outcome of a transaction (a refusal to vote is stored as aborted, with what is known of it). */
  /**
   * The outcome of a prepared transaction, or a refusal (a row with no coordinator) of one never
   * prepared here. A finished outcome is never overwritten by another: that would turn a commit into
   * an abort on disk (a broken invariant, not an I/O error).
   */
  persistOutcome(txnId: string, outcome: Outcome, atWallMs: number): void {
    this.forced(() => {
      const row = this.statement("SELECT phase FROM txns WHERE txn_id = ?").get(txnId) as
        { phase: string } | undefined;
      if (row && row.phase !== "prepared") {
        invariant(
          row.phase === outcome,
          () => `transaction ${txnId} is ${row.phase} on disk: not ${outcome}`,
        );
        return;
      }
      if (row)
        this.statement("UPDATE txns SET phase = ?, updated_at_ms = ? WHERE txn_id = ?").run(
          outcome,
          atWallMs,
          txnId,
        );
      else
        this.statement(
          "INSERT INTO txns (txn_id, coordinator, token, participants, plan_id, plan_version, activation_wall_ms, phase, updated_at_ms) VALUES (?, '', 0, '[]', '', 0, 0, ?, ?)",
        ).run(txnId, outcome, atWallMs);
      this.boundTxns();
    });
  }

  /**
   * Finished transactions and refusals are bounded apart (each to `maxFinishedTxns`), so that refusals,
   * which anyone can cause by asking about made-up transactions, never push out a real outcome. A
   * prepared one is never dropped. In batches of 100, as for events.
   */
  private boundTxns(): void {
    for (const refusals of [false, true]) {
      const kind = refusals ? "coordinator = ''" : "coordinator != ''";
      const { n } = this.statement(`SELECT count(*) AS n FROM txns WHERE ${kind}`).get() as { n: number };
      if (n <= this.limits.maxFinishedTxns + 100) continue;
      const result = this.statement(
        `DELETE FROM txns WHERE phase != 'prepared' AND ${kind} AND rowid NOT IN (SELECT rowid FROM txns WHERE ${kind} ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?)`,
      ).run(this.limits.maxFinishedTxns);
      if (result.changes > 0) this.addToCounter("txns_pruned", result.changes);
    }
  }

  get txnsPruned(): number {
    return this.counter("txns_pruned");
  }

  /** What the participant restarts from: its fencing floor, the transaction it is in doubt about, its tombstones. */
  participantRecord(maxTombstones: number): {
    highestToken: number;
    prepared: PreparedTxn | null;
    tombstones: Tombstone[];
    refusals: string[];
  } {
    const rows = this.statement(
      "SELECT * FROM txns WHERE coordinator != '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?",
    ).all(maxTombstones + 1) as TxnRow[];
    const refusals = this.statement(
      "SELECT txn_id FROM txns WHERE coordinator = '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?",
    ).all(maxTombstones) as { txn_id: string }[];
    const preparedRow = this.statement(
      "SELECT * FROM txns WHERE phase = 'prepared' ORDER BY updated_at_ms DESC LIMIT 1",
    ).get() as TxnRow | undefined;
    return {
      highestToken: this.highestToken(),
      prepared: preparedRow ? txnFromRow(preparedRow) : null,
      tombstones: rows
        .filter((r) => r.phase !== "prepared")
        .slice(0, maxTombstones)
        .reverse()
        .map((r) => ({ txnId: r.txn_id, outcome: r.phase as Outcome })),
      refusals: refusals.map((r) => r.txn_id).reverse(),
    };
  }

  transaction(txnId: string): (PreparedTxn & { phase: string }) | null {
    const row = this.statement("SELECT * FROM txns WHERE txn_id = ?").get(txnId) as TxnRow | undefined;
    return row ? { ...txnFromRow(row), phase: row.phase } : null;
  }

  /** The newest committed transactions (at most `limit`), most recently written first: what a restart resumes. */
  committedTransactions(limit: number): StoredTxn[] {
    const rows = this.statement(
      "SELECT * FROM txns WHERE phase = 'committed' AND coordinator != '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?",
    ).all(limit) as TxnRow[];
    return rows.map((row) => ({ txn: txnFromRow(row), phase: "committed" }));
  }

  /** The newest finished or pending transaction, for the status. */
  lastTransaction(): { txnId: string; phase: string; atWallMs: number } | null {
    const row = this.statement(
      "SELECT txn_id, phase, updated_at_ms FROM txns WHERE coordinator != '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT 1",
    ).get() as { txn_id: string; phase: string; updated_at_ms: number } | undefined;
    return row ? { txnId: row.txn_id, phase: row.phase, atWallMs: row.updated_at_ms } : null;
  }
}

/** What each copy of a stopped gateway's latch says, read only (`greenwave fault show`). */
export function inspectStoredLatch(dataDir: string, nowWallMs = Date.now()): LatchInspection {
  return inspectLatch(
    { record: join(dataDir, LATCH_RECORD_FILE), database: join(dataDir, STORE_FILE) },
    nowWallMs,
  );
}

/** A row of the `txns` table, as SQLite returns it (migration 2). */
export interface TxnRow {
  txn_id: string;
  coordinator: string;
  token: number;
  participants: string;
  plan_id: string;
  plan_version: number;
  activation_wall_ms: number;
  phase: "prepared" | "committed" | "aborted";
  updated_at_ms: number;
}

function txnFromRow(row: TxnRow): PreparedTxn {
  return {
    txnId: row.txn_id,
    coordinator: row.coordinator,
    token: row.token,
    participants: JSON.parse(row.participants) as string[],
    plan: { planId: row.plan_id, version: row.plan_version },
    activationWallMs: row.activation_wall_ms,
  };
}
