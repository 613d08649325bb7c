import type { SqlAccess } from "./txn-records.js";

/**
 * The plans a gateway received (configured, or with a PREPARE) and the one in force, in the store's
 * `plans` and `plan_in_force` tables: functions over the store's compiled statements; the store
 * decides when a write is forced. A plan is identified by its id, version and content digest
 * (core/corridor/plan-identity.ts); the store keeps one content per (id, version).
 */

export interface PlanInForce {
  readonly planId: string;
  readonly version: number;
  readonly sinceWallMs: number;
  /** The instant of the committed change that brought it in force; null for a configured plan. */
  readonly activationWallMs: number | null;
}

/**
 * A plan and its content digest: the body's `digest` (a compiled plan carries it), in a column of its
 * own (migration 5) so that it can be read without the body. A second record of a version keeps the
 * first — except that a plan stored before digests takes the digest, and the body that carries it, of
 * the same plan recorded again (its callers compared the two first: plan-identity.ts `sameContent`).
 */
export function writePlan(
  q: SqlAccess,
  planId: string,
  version: number,
  body: unknown,
  source: string,
  atWallMs: number,
): void {
  const digest = (body as { digest?: unknown } | null)?.digest;
  q.statement(
    `INSERT INTO plans (plan_id, version, body, source, received_at_ms, digest) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (plan_id, version) DO UPDATE SET body = excluded.body, digest = excluded.digest
     WHERE plans.digest IS NULL AND excluded.digest IS NOT NULL`,
  ).run(planId, version, JSON.stringify(body), source, atWallMs, typeof digest === "string" ? digest : null);
}

/** Where a plan first received with a PREPARE says it came from. */
export function txnSource(txnId: string): string {
  return `txn ${txnId}`;
}

/**
 * A plan first received with a change that was then aborted was never taken anywhere: it is forgotten
 * with the change, so that its (id, version) is not held to a content that nobody runs. A plan that
 * was known before the change, or is in force, stays.
 */
export function forgetPlanOfAborted(q: SqlAccess, txnId: string): void {
  q.statement(
    "DELETE FROM plans WHERE source = ? AND NOT EXISTS (SELECT 1 FROM plan_in_force f WHERE f.plan_id = plans.plan_id AND f.version = plans.version)",
  ).run(txnSource(txnId));
}

export function readPlanBody(q: SqlAccess, planId: string, version: number): unknown {
  const row = q.statement("SELECT body FROM plans WHERE plan_id = ? AND version = ?").get(planId, version) as
    { body: string } | undefined;
  return row ? (JSON.parse(row.body) as unknown) : null;
}

/** Null for a plan stored before digests, or not stored at all. */
export function readPlanDigest(q: SqlAccess, planId: string, version: number): string | null {
  const row = q
    .statement("SELECT digest FROM plans WHERE plan_id = ? AND version = ?")
    .get(planId, version) as { digest: string | null } | undefined;
  return row?.digest ?? null;
}

export function writePlanInForce(q: SqlAccess, plan: PlanInForce): void {
  q.statement(
    "INSERT OR REPLACE INTO plan_in_force (id, plan_id, version, since_wall_ms, activation_wall_ms) VALUES (1, ?, ?, ?, ?)",
  ).run(plan.planId, plan.version, plan.sinceWallMs, plan.activationWallMs);
}

export function readPlanInForce(q: SqlAccess): PlanInForce | null {
  const row = q
    .statement("SELECT plan_id, version, since_wall_ms, activation_wall_ms FROM plan_in_force WHERE id = 1")
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
