import type { DecisionLogEntry } from "../core/corridor/decision-log.js";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Outcome } from "../core/corridor/participant.js";
import { invariant } from "../core/invariant.js";
import { StoreError, unsyncedTransaction } from "./store.js";

export const COORDINATOR_STORE_FILE = "coordinator.db";

export type { DecisionLogEntry } from "../core/corridor/decision-log.js";

/**
 * Ended transactions kept in the log (the newest). An ended one was acknowledged by every participant,
 * or aborted: no participant is in doubt about it, so forgetting it changes no answer (a committed one
 * is never asked about again; an aborted one is presumed aborted anyway).
 */
export const MAX_ENDED_DECISIONS = 1000;

/**
 * A coordinator's log (one SQLite file, WAL, synchronous FULL). A commit is written, forced, before
 * any COMMIT is sent: it is the commit point. Aborts and ends are written lazily (presumed abort: a
 * transaction the log does not know was aborted).
 */
export class CoordinatorStore {
  private readonly db: Database.Database;

  private constructor(
    readonly file: string,
    private readonly maxEnded = MAX_ENDED_DECISIONS,
  ) {
    try {
      this.db = new Database(file);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = FULL");
      this.db.exec(`CREATE TABLE IF NOT EXISTS decisions (
        txn_id TEXT PRIMARY KEY,
        corridor TEXT NOT NULL,
        coordinator TEXT NOT NULL,
        participants TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        plan_version INTEGER NOT NULL,
        activation_wall_ms INTEGER NOT NULL,
        tokens TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('committed', 'aborted')),
        ended INTEGER NOT NULL DEFAULT 0,
        at_ms INTEGER NOT NULL
      ) STRICT`);
      // Signed decisions (issue 20): a log made by an older release gains the column.
      const columns = this.db.prepare("PRAGMA table_info(decisions)").all() as { name: string }[];
      if (!columns.some((c) => c.name === "signature"))
        this.db.exec("ALTER TABLE decisions ADD COLUMN signature TEXT");
    } catch (error) {
      throw new StoreError(`cannot open the coordinator log ${file}: ${(error as Error).message}`);
    }
  }

  static open(dataDir: string, maxEnded = MAX_ENDED_DECISIONS): CoordinatorStore {
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (error) {
      throw new StoreError(`cannot create the data directory ${dataDir}: ${(error as Error).message}`);
    }
    return new CoordinatorStore(join(dataDir, COORDINATOR_STORE_FILE), maxEnded);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** The commit point, forced. */
  persistCommit(entry: Omit<DecisionLogEntry, "outcome" | "ended">, atMs: number): void {
    this.insert({ ...entry, outcome: "committed", ended: false }, atMs, "");
  }

  /**
   * Lazy (no fsync; durable with the next forced write): the end of a committed transaction, or an
   * abort worth remembering. Lost in a power cut, a committed transaction is only finished again
   * (COMMIT resent, acknowledged again) and an abort is presumed.
   */
  persistEnd(entry: Omit<DecisionLogEntry, "ended">, atMs: number): void {
    unsyncedTransaction(this.db, () => {
      this.insert({ ...entry, ended: true }, atMs, "ON CONFLICT (txn_id) DO UPDATE SET ended = 1");
      this.boundEnded();
    });
  }

  /** In batches of 100: one DELETE per hundred ended transactions. */
  private boundEnded(): void {
    const { n } = this.db.prepare("SELECT count(*) AS n FROM decisions WHERE ended = 1").get() as {
      n: number;
    };
    if (n <= this.maxEnded + 100) return;
    const result = this.db
      .prepare(
        "DELETE FROM decisions WHERE ended = 1 AND rowid NOT IN (SELECT rowid FROM decisions WHERE ended = 1 ORDER BY at_ms DESC, rowid DESC LIMIT ?)",
      )
      .run(this.maxEnded);
    // Postcondition: exactly the newest maxEnded ended transactions are kept (open ones are never pruned).
    invariant(
      n - result.changes === this.maxEnded,
      () => `decision log: ${n - result.changes} ended transactions kept, bound ${this.maxEnded}`,
    );
  }

  /** Ended transactions in the log (at most MAX_ENDED_DECISIONS + 100). */
  endedCount(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM decisions WHERE ended = 1").get() as { n: number }).n;
  }

  private insert(entry: DecisionLogEntry, atMs: number, onConflict: string): void {
    this.db
      .prepare(
        `INSERT INTO decisions (txn_id, corridor, coordinator, participants, plan_id, plan_version, activation_wall_ms, tokens, outcome, ended, at_ms, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ${onConflict}`,
      )
      .run(
        entry.txnId,
        entry.corridor,
        entry.coordinator,
        JSON.stringify(entry.participants),
        entry.planId,
        entry.planVersion,
        entry.activationWallMs,
        JSON.stringify(entry.tokens),
        entry.outcome,
        entry.ended ? 1 : 0,
        atMs,
        entry.signature ?? null,
      );
  }

  outcomeOf(txnId: string): Outcome | null {
    return this.decisionOf(txnId)?.outcome ?? null;
  }

  /** The outcome and its signature (null in a record of an older release). */
  decisionOf(txnId: string): { outcome: Outcome; signature: string | null } | null {
    const row = this.db.prepare("SELECT outcome, signature FROM decisions WHERE txn_id = ?").get(txnId) as
      { outcome: Outcome; signature: string | null } | undefined;
    return row ? { outcome: row.outcome, signature: row.signature } : null;
  }

  /** Committed transactions not yet acknowledged by every participant: a restarted coordinator finishes them. */
  unfinished(): DecisionLogEntry[] {
    const rows = this.db
      .prepare("SELECT * FROM decisions WHERE outcome = 'committed' AND ended = 0")
      .all() as {
      txn_id: string;
      corridor: string;
      coordinator: string;
      participants: string;
      plan_id: string;
      plan_version: number;
      activation_wall_ms: number;
      tokens: string;
      signature: string | null;
    }[];
    return rows.map((r) => ({
      txnId: r.txn_id,
      corridor: r.corridor,
      coordinator: r.coordinator,
      participants: JSON.parse(r.participants) as string[],
      planId: r.plan_id,
      planVersion: r.plan_version,
      activationWallMs: r.activation_wall_ms,
      tokens: JSON.parse(r.tokens) as Record<string, number>,
      outcome: "committed",
      ended: false,
      signature: r.signature,
    }));
  }
}
