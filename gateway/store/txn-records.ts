import type { Outcome, PreparedTxn, Tombstone } from "../core/corridor/participant.js";
import type { StoredTxn } from "../core/corridor/resume.js";
import { invariant } from "../core/invariant.js";
import { cancelTarget } from "../core/corridor/plan-cancel.js";
import { isKeyringKey } from "../core/corridor/keyring.js";
import type Database from "better-sqlite3";

/**
 * The participant's records of transactions in the store's `txns` table: outcomes of transactions it
 * prepared, and refusals (rows with no coordinator) of ones it never prepared, each bounded on its own.
 * Functions over the store's compiled statements; the store decides when a write is forced.
 */

/** What these functions need of the store: its compiled statements and its counters. */
export interface SqlAccess {
  statement(sql: string): Database.Statement;
  addToCounter(key: string, by: number): void;
}

export interface ParticipantRecord {
  highestToken: number;
  prepared: PreparedTxn | null;
  tombstones: Tombstone[];
  refusals: string[];
}

export function readLeaseEpoch(q: SqlAccess): number {
  const row = q.statement("SELECT epoch FROM lease_epoch WHERE id = 1").get() as
    { epoch: number } | undefined;
  return row?.epoch ?? 0;
}

export function writeLeaseEpoch(q: SqlAccess, epoch: number): void {
  q.statement("INSERT OR REPLACE INTO lease_epoch (id, epoch) VALUES (1, ?)").run(epoch);
}

export function readHighestToken(q: SqlAccess): number {
  const row = q.statement("SELECT highest_token FROM fencing WHERE id = 1").get() as
    { highest_token: number } | undefined;
  return row?.highest_token ?? 0;
}

/** PREPARED and the new fencing floor (the store writes the plan beside them, in the same transaction). */
export function writePrepared(q: SqlAccess, txn: PreparedTxn, highestToken: number, atWallMs: number): void {
  q.statement(
    "INSERT OR REPLACE INTO txns (txn_id, coordinator, token, participants, plan_id, plan_version, activation_wall_ms, phase, updated_at_ms, plan_until, decision_key, plan_digest) VALUES (?, ?, ?, ?, ?, ?, ?, 'prepared', ?, ?, ?, ?)",
  ).run(
    txn.txnId,
    txn.coordinator,
    txn.token,
    JSON.stringify(txn.participants),
    txn.plan.planId,
    txn.plan.version,
    txn.activationWallMs,
    atWallMs,
    txn.plan.until === undefined ? null : JSON.stringify(txn.plan.until),
    txn.decisionKey ?? null,
    txn.plan.digest ?? null,
  );
  q.statement("INSERT OR REPLACE INTO fencing (id, highest_token) VALUES (1, ?)").run(highestToken);
}

/**
 * A finished outcome is never overwritten by another: that would turn a commit into an abort on disk.
 * `signature`: the coordinator's signature of it, kept to forward to peers that ask.
 */
export function writeOutcome(
  q: SqlAccess,
  txnId: string,
  outcome: Outcome,
  atWallMs: number,
  signature: string | null = null,
): void {
  const row = q.statement("SELECT phase FROM txns WHERE txn_id = ?").get(txnId) as
    { phase: string } | undefined;
  if (row && row.phase !== "prepared") {
    invariant(row.phase === outcome, () => `transaction ${txnId} is ${row.phase} on disk: not ${outcome}`);
    return;
  }
  if (row) {
    q.statement("UPDATE txns SET phase = ?, updated_at_ms = ?, decision_signature = ? WHERE txn_id = ?").run(
      outcome,
      atWallMs,
      signature,
      txnId,
    );
    // A committed cancel takes its target back in the same write: no restart between them.
    if (outcome === "committed") {
      const { plan_id: planId } = q.statement("SELECT plan_id FROM txns WHERE txn_id = ?").get(txnId) as {
        plan_id: string;
      };
      const target = cancelTarget(planId);
      if (target !== null)
        q.statement("UPDATE txns SET cancelled_by = ? WHERE txn_id = ? AND phase = 'committed'").run(
          txnId,
          target,
        );
      // A committed keyring is the trust from this write on (core/corridor/keyring.ts): never an older
      // one; the same version again replaces a row only if it differs (a damaged row, pushed again —
      // participants take no other content under the version in force).
      if (isKeyringKey(planId)) adoptKeyring(q, txnId, atWallMs);
    }
  } else
    q.statement(
      "INSERT INTO txns (txn_id, coordinator, token, participants, plan_id, plan_version, activation_wall_ms, phase, updated_at_ms) VALUES (?, '', 0, '[]', '', 0, 0, ?, ?)",
    ).run(txnId, outcome, atWallMs);
}

function adoptKeyring(q: SqlAccess, txnId: string, atWallMs: number): void {
  const row = q
    .statement(
      "SELECT p.body AS body, p.version AS version FROM txns t JOIN plans p ON p.plan_id = t.plan_id AND p.version = t.plan_version WHERE t.txn_id = ?",
    )
    .get(txnId) as { body: string; version: number } | undefined;
  invariant(row !== undefined, () => `keyring of committed transaction ${txnId} missing from the plans`);
  const digest = (storedKeyringBody(row.body) as { digest?: unknown }).digest;
  invariant(typeof digest === "string", () => `keyring of transaction ${txnId} has no digest`);
  q.statement(
    `INSERT INTO keyring (id, version, digest, body, txn_id, adopted_at_ms) VALUES (1, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET version = excluded.version, digest = excluded.digest, body = excluded.body,
       txn_id = excluded.txn_id, adopted_at_ms = excluded.adopted_at_ms
     WHERE excluded.version > keyring.version
        OR (excluded.version = keyring.version AND excluded.body <> keyring.body)`,
  ).run(row.version, digest, row.body, txnId, atWallMs);
}

/** The keyring in force (its compiled form, as stored), or null: none committed here. */
export function readKeyring(q: SqlAccess): unknown {
  const row = q.statement("SELECT body FROM keyring WHERE id = 1").get() as { body: string } | undefined;
  return row ? storedKeyringBody(row.body) : null;
}

/**
 * A stored keyring's body as read: the object, or — for a row that is not one (truncated, garbled) —
 * `{ damaged: why }`, which no keyring check takes: a damaged keyring must trust nothing, never read as
 * "none committed" (which would give back what it revoked), and never stop a gateway from starting.
 */
export function storedKeyringBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { damaged: `not JSON (${text.length} characters: truncated?)` };
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value
    : { damaged: `not a keyring but ${JSON.stringify(value)?.slice(0, 40) ?? "nothing"}` };
}

/**
 * Finished transactions and refusals are bounded apart (each to `maxFinishedTxns`), so that refusals,
 * which anyone can cause by asking about made-up transactions, never push out a real outcome. A
 * prepared one is never dropped. In batches of 100, as for events.
 */
export function boundTxns(q: SqlAccess, maxFinishedTxns: number): void {
  for (const refusals of [false, true]) {
    const kind = refusals ? "coordinator = ''" : "coordinator != ''";
    const { n } = q.statement(`SELECT count(*) AS n FROM txns WHERE ${kind}`).get() as { n: number };
    if (n <= maxFinishedTxns + 100) continue;
    const result = q
      .statement(
        `DELETE FROM txns WHERE phase != 'prepared' AND ${kind} AND rowid NOT IN (SELECT rowid FROM txns WHERE ${kind} ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?)`,
      )
      .run(maxFinishedTxns);
    if (result.changes > 0) q.addToCounter("txns_pruned", result.changes);
    // Postcondition: the newest maxFinishedTxns are kept, and beyond them only prepared ones (refusals
    // are never prepared).
    const prepared = refusals
      ? 0
      : (
          q.statement(`SELECT count(*) AS n FROM txns WHERE phase = 'prepared' AND ${kind}`).get() as {
            n: number;
          }
        ).n;
    const kept = n - result.changes;
    invariant(
      kept >= maxFinishedTxns && kept <= maxFinishedTxns + prepared,
      () => `txns (${kind}): ${kept} kept of ${n}, bound ${maxFinishedTxns} + ${prepared} prepared`,
    );
  }
}

/** What the participant restarts from: its fencing floor, the transaction it is in doubt about, its tombstones. */
export function readParticipantRecord(
  q: SqlAccess,
  highestToken: number,
  maxTombstones: number,
): ParticipantRecord {
  const rows = q
    .statement("SELECT * FROM txns WHERE coordinator != '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?")
    .all(maxTombstones + 1) as TxnRow[];
  const refusals = q
    .statement(
      "SELECT txn_id FROM txns WHERE coordinator = '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?",
    )
    .all(maxTombstones) as { txn_id: string }[];
  const preparedRow = q
    .statement("SELECT * FROM txns WHERE phase = 'prepared' ORDER BY updated_at_ms DESC LIMIT 1")
    .get() as TxnRow | undefined;
  return {
    highestToken,
    prepared: preparedRow ? txnFromRow(preparedRow) : null,
    tombstones: rows
      .filter((r) => r.phase !== "prepared")
      .slice(0, maxTombstones)
      .reverse()
      .map((r) => ({
        txnId: r.txn_id,
        outcome: r.phase as Outcome,
        coordinator: r.coordinator,
        ...(typeof r.decision_signature === "string" ? { signature: r.decision_signature } : {}),
      })),
    refusals: refusals.map((r) => r.txn_id).reverse(),
  };
}

export function readTransaction(
  q: SqlAccess,
  txnId: string,
): (PreparedTxn & { phase: string; cancelledBy: string | null }) | null {
  const row = q.statement("SELECT * FROM txns WHERE txn_id = ?").get(txnId) as TxnRow | undefined;
  return row ? { ...txnFromRow(row), phase: row.phase, cancelledBy: row.cancelled_by ?? null } : null;
}

/** The newest committed transactions (at most `limit`), most recently written first: what a restart resumes. */
export function readCommitted(q: SqlAccess, limit: number): StoredTxn[] {
  const rows = q
    .statement(
      "SELECT * FROM txns WHERE phase = 'committed' AND coordinator != '' AND plan_id NOT LIKE 'cancel:%' AND plan_id NOT LIKE 'keyring:%' ORDER BY updated_at_ms DESC, rowid DESC LIMIT ?",
    )
    .all(limit) as TxnRow[];
  return rows.map((row) => ({
    txn: txnFromRow(row),
    phase: "committed",
    ...(typeof row.cancelled_by === "string" ? { cancelled: true } : {}),
  }));
}

/** The newest finished or pending transaction, for the status. */
export function readLastTransaction(q: SqlAccess): { txnId: string; phase: string; atWallMs: number } | null {
  const row = q
    .statement(
      "SELECT txn_id, phase, updated_at_ms FROM txns WHERE coordinator != '' ORDER BY updated_at_ms DESC, rowid DESC LIMIT 1",
    )
    .get() as { txn_id: string; phase: string; updated_at_ms: number } | undefined;
  return row ? { txnId: row.txn_id, phase: row.phase, atWallMs: row.updated_at_ms } : null;
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
  /** Migration 6: JSON of PlanRef.until, or null. */
  plan_until?: string | null;
  /** Migration 9: the PREPARE's decision key, the plan's digest, the coordinator's signature of the outcome. */
  decision_key?: string | null;
  plan_digest?: string | null;
  decision_signature?: string | null;
  /** Migration 10: the cancel that took this committed change back. */
  cancelled_by?: string | null;
}

export function txnFromRow(row: TxnRow): PreparedTxn {
  return {
    txnId: row.txn_id,
    coordinator: row.coordinator,
    token: row.token,
    participants: JSON.parse(row.participants) as string[],
    plan: {
      planId: row.plan_id,
      version: row.plan_version,
      ...(typeof row.plan_digest === "string" ? { digest: row.plan_digest } : {}),
      ...untilOf(row),
    },
    activationWallMs: row.activation_wall_ms,
    ...(typeof row.decision_key === "string" ? { decisionKey: row.decision_key } : {}),
  };
}

/** A stored override end, as far as it still reads as one (a record is trusted no further than its shape). */
function untilOf(row: TxnRow): { until?: number | "hold" } {
  if (typeof row.plan_until !== "string") return {};
  const until = JSON.parse(row.plan_until) as unknown;
  return typeof until === "number" || until === "hold" ? { until } : {};
}
