import type { SqlAccess } from "./txn-records.js";

/**
 * How the last run on this store ended, in the store's `run_record` table (migration 8): what a
 * restart proves its start-up from (gateway/node/previous-run.ts). One row, rewritten at every start
 * (the run has begun and not yet stopped: a crash, a `kill -9` or a power cut leaves it so), when a
 * plan takes effect (the plan then in force), and at a clean stop that reached all-red and handed the
 * lamps to the modules' safe state. Every write is forced: a record that says more than the lamps saw
 * would let a restart skip its start-up flash where it must not.
 */
export interface RunRecord {
  /** sha256 of the loaded intersection configuration with its device wiring (previous-run.ts). */
  readonly configDigest: string;
  /** The plan in force: its id, version and content digest. */
  readonly planId: string;
  readonly planVersion: number;
  readonly planDigest: string;
  readonly startedAtWallMs: number;
  /** When the run stopped cleanly (all-red, then the safe state written); null: it has not (yet). */
  readonly cleanStopAtWallMs: number | null;
}

interface Row {
  config_digest: string;
  plan_id: string;
  plan_version: number;
  plan_digest: string;
  started_at_ms: number;
  clean_stop_at_ms: number | null;
}

export function readRunRecord(q: SqlAccess): RunRecord | null {
  const row = q
    .statement(
      "SELECT config_digest, plan_id, plan_version, plan_digest, started_at_ms, clean_stop_at_ms FROM run_record WHERE id = 1",
    )
    .get() as Row | undefined;
  if (!row) return null;
  return {
    configDigest: row.config_digest,
    planId: row.plan_id,
    planVersion: row.plan_version,
    planDigest: row.plan_digest,
    startedAtWallMs: row.started_at_ms,
    cleanStopAtWallMs: row.clean_stop_at_ms,
  };
}

export function writeRunRecord(q: SqlAccess, r: RunRecord): void {
  q.statement(
    "INSERT OR REPLACE INTO run_record (id, config_digest, plan_id, plan_version, plan_digest, started_at_ms, clean_stop_at_ms) VALUES (1, ?, ?, ?, ?, ?, ?)",
  ).run(r.configDigest, r.planId, r.planVersion, r.planDigest, r.startedAtWallMs, r.cleanStopAtWallMs);
}
