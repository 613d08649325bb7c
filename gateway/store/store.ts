import type { StoredTxn } from "../core/corridor/resume.js";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Outcome, PreparedTxn, Tombstone } from "../core/corridor/participant.js";
import type { FaultKind, FaultLatch } from "../core/monitor.js";
import type { LatchStore } from "../shell/latch-store.js";
import { MIGRATIONS } from "./migrations.js";

export const STORE_FILE = "gateway.db";

export interface StoreLimits {
  /** Audit events kept; older ones are pruned (counted). */
  readonly maxEvents: number;
  /** Messages waiting for the broker; past it the oldest are dropped (counted). */
  readonly maxOutbox: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = { maxEvents: 100_000, maxOutbox: 10_000 };

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

export class StoreError extends Error {
  override name = "StoreError";
}

/**
 * One gateway's durable state in one SQLite file (WAL, synchronous FULL: every commit is on disk
 * when it returns): the latched fault, the plans received and in force, the audit trail of events,
 * and the outbox of messages that wait for the broker.
 */
export class GatewayStore implements LatchStore {
  private readonly db: Database.Database;
  readonly file: string;

  private constructor(
    file: string,
    private readonly limits: StoreLimits,
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
    } catch (error) {
      this.db.close();
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        `the store ${file} is unusable: ${(error as Error).message}. The gateway will not start without it (its latched fault may be in it): restore it from a backup, or move it aside after checking the intersection`,
      );
    }
  }

  /** Opens (creating if needed) the store of one gateway under its data directory. */
  static open(dataDir: string, limits: StoreLimits = DEFAULT_STORE_LIMITS): GatewayStore {
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (error) {
      throw new StoreError(`cannot create the data directory ${dataDir}: ${(error as Error).message}`);
    }
    return new GatewayStore(join(dataDir, STORE_FILE), limits);
  }

  get schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  private migrate(): void {
    const current = this.schemaVersion;
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
    const row = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as
      { value: string } | undefined;
    return row ? Number(row.value) : 0;
  }

  private addToCounter(key: string, by: number): void {
    this.db
      .prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
      )
      .run(key, String(by));
  }

  get outboxDropped(): number {
    return this.counter("outbox_dropped");
  }

  get eventsPruned(): number {
    return this.counter("events_pruned");
  }

  // --- latch (LatchStore) ---

  load(): FaultLatch | null {
    const row = this.db.prepare("SELECT kind, message, groups, at_wall_ms FROM latch WHERE id = 1").get() as
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

  save(latch: FaultLatch): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          "INSERT OR REPLACE INTO latch (id, kind, message, groups, at_wall_ms) VALUES (1, ?, ?, ?, ?)",
        )
        .run(latch.kind, latch.message, JSON.stringify(latch.groups), latch.atWallMs);
    })();
  }

  clear(): void {
    this.db.prepare("DELETE FROM latch WHERE id = 1").run();
  }

  // --- plans ---

  recordPlan(planId: string, version: number, body: unknown, source: string, atWallMs: number): void {
    this.db
      .prepare(
        "INSERT OR IGNORE INTO plans (plan_id, version, body, source, received_at_ms) VALUES (?, ?, ?, ?, ?)",
      )
      .run(planId, version, JSON.stringify(body), source, atWallMs);
  }

  planBody(planId: string, version: number): unknown {
    const row = this.db
      .prepare("SELECT body FROM plans WHERE plan_id = ? AND version = ?")
      .get(planId, version) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as unknown) : null;
  }

  /** Runs `writes` as one transaction: all of them are durable, or none. */
  atomically<T>(writes: () => T): T {
    return this.db.transaction(writes)();
  }

  setPlanInForce(plan: PlanInForce): void {
    this.db
      .prepare(
        "INSERT OR REPLACE INTO plan_in_force (id, plan_id, version, since_wall_ms, activation_wall_ms) VALUES (1, ?, ?, ?, ?)",
      )
      .run(plan.planId, plan.version, plan.sinceWallMs, plan.activationWallMs);
  }

  planInForce(): PlanInForce | null {
    const row = this.db
      .prepare("SELECT plan_id, version, since_wall_ms, activation_wall_ms FROM plan_in_force WHERE id = 1")
      .get() as
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
    return this.db.transaction(() => {
      const result = this.db
        .prepare("INSERT INTO events (at_wall_ms, type, actor, detail) VALUES (?, ?, ?, ?)")
        .run(event.atWallMs, event.type, event.actor, JSON.stringify(event.detail));
      const seq = Number(result.lastInsertRowid);
      if (message) {
        const { topic, payload } = message(seq);
        this.db.prepare("INSERT INTO outbox (seq, topic, payload) VALUES (?, ?, ?)").run(seq, topic, payload);
        this.boundOutbox();
      }
      this.boundEvents(seq);
      return { ...event, seq };
    })();
  }

  private boundOutbox(): void {
    const { n } = this.db.prepare("SELECT count(*) AS n FROM outbox").get() as { n: number };
    const excess = n - this.limits.maxOutbox;
    if (excess <= 0) return;
    this.db
      .prepare("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)")
      .run(excess);
    this.addToCounter("outbox_dropped", excess);
  }

  private boundEvents(lastSeq: number): void {
    // Pruning in batches keeps the check cheap: count only when the newest seq says it may be needed.
    if (lastSeq <= this.limits.maxEvents || lastSeq % 100 !== 0) return;
    const result = this.db.prepare("DELETE FROM events WHERE seq <= ?").run(lastSeq - this.limits.maxEvents);
    if (result.changes > 0) this.addToCounter("events_pruned", result.changes);
  }

  events(afterSeq = 0, limit = 1000): StoredEvent[] {
    const rows = this.db
      .prepare("SELECT seq, at_wall_ms, type, actor, detail FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
      .all(afterSeq, limit) as {
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

  /** The oldest messages waiting for the broker, in order. */
  outbox(limit: number): OutboxMessage[] {
    return this.db
      .prepare("SELECT seq, topic, payload FROM outbox ORDER BY seq LIMIT ?")
      .all(limit) as OutboxMessage[];
  }

  outboxDepth(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM outbox").get() as { n: number }).n;
  }

  /** The broker has acknowledged this message. */
  delivered(seq: number): void {
    this.db.prepare("DELETE FROM outbox WHERE seq = ?").run(seq);
  }

  // --- corridor protocol ---

  leaseEpoch(): number {
    const row = this.db.prepare("SELECT epoch FROM lease_epoch WHERE id = 1").get() as
      { epoch: number } | undefined;
    return row?.epoch ?? 0;
  }

  /** Forced: no token of this epoch may be handed out before it is on disk. */
  persistLeaseEpoch(epoch: number): void {
    this.db.prepare("INSERT OR REPLACE INTO lease_epoch (id, epoch) VALUES (1, ?)").run(epoch);
  }

  highestToken(): number {
    const row = this.db.prepare("SELECT highest_token FROM fencing WHERE id = 1").get() as
      { highest_token: number } | undefined;
    return row?.highest_token ?? 0;
  }

  /** PREPARED, the plan it would take, and the new fencing floor: one forced transaction. */
  persistPrepared(txn: PreparedTxn, plan: { body: unknown }, highestToken: number, atWallMs: number): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          "INSERT OR REPLACE INTO txns (txn_id, coordinator, token, participants, plan_id, plan_version, activation_wall_ms, phase, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'prepared', ?)",
        )
        .run(
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
      this.db.prepare("INSERT OR REPLACE INTO fencing (id, highest_token) VALUES (1, ?)").run(highestToken);
    })();
  }

  /** The outcome of a transaction (a refusal to vote is stored as aborted, with what is known of it). */
  persistOutcome(txnId: string, outcome: Outcome, atWallMs: number): void {
    const updated = this.db
      .prepare("UPDATE txns SET phase = ?, updated_at_ms = ? WHERE txn_id = ?")
      .run(outcome, atWallMs, txnId);
    if (updated.changes === 0)
      this.db
        .prepare(
          "INSERT INTO txns (txn_id, coordinator, token, participants, plan_id, plan_version, activation_wall_ms, phase, updated_at_ms) VALUES (?, '', 0, '[]', '', 0, 0, ?, ?)",
        )
        .run(txnId, outcome, atWallMs);
  }

  /** What the participant restarts from: its fencing floor, the transaction it is in doubt about, its tombstones. */
  participantRecord(maxTombstones: number): {
    highestToken: number;
    prepared: PreparedTxn | null;
    tombstones: Tombstone[];
  } {
    const rows = this.db
      .prepare("SELECT * FROM txns ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?")
      .all(maxTombstones + 1) as TxnRow[];
    const preparedRow = this.db
      .prepare("SELECT * FROM txns WHERE phase = 'prepared' ORDER BY updated_at_ms DESC LIMIT 1")
      .get() as TxnRow | undefined;
    return {
      highestToken: this.highestToken(),
      prepared: preparedRow ? txnFromRow(preparedRow) : null,
      tombstones: rows
        .filter((r) => r.phase !== "prepared")
        .slice(0, maxTombstones)
        .reverse()
        .map((r) => ({ txnId: r.txn_id, outcome: r.phase as Outcome })),
    };
  }

  transaction(txnId: string): (PreparedTxn & { phase: string }) | null {
    const row = this.db.prepare("SELECT * FROM txns WHERE txn_id = ?").get(txnId) as TxnRow | undefined;
    return row ? { ...txnFromRow(row), phase: row.phase } : null;
  }

  /** The newest committed transactions (at most `limit`), most recently written first: what a restart resumes. */
  committedTransactions(limit: number): StoredTxn[] {
    const rows = this.db
      .prepare(
        "SELECT * FROM txns WHERE phase = 'committed' AND coordinator != '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?",
      )
      .all(limit) as TxnRow[];
    return rows.map((row) => ({ txn: txnFromRow(row), phase: "committed" }));
  }

  /** The newest finished or pending transaction, for the status. */
  lastTransaction(): { txnId: string; phase: string; atWallMs: number } | null {
    const row = this.db
      .prepare(
        "SELECT txn_id, phase, updated_at_ms FROM txns WHERE coordinator != '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT 1",
      )
      .get() as { txn_id: string; phase: string; updated_at_ms: number } | undefined;
    return row ? { txnId: row.txn_id, phase: row.phase, atWallMs: row.updated_at_ms } : null;
  }
}

interface TxnRow {
  txn_id: string;
  coordinator: string;
  token: number;
  participants: string;
  plan_id: string;
  plan_version: number;
  activation_wall_ms: number;
  phase: string;
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
