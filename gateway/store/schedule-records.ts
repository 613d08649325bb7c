import { type ManualOverride, MAX_TAKEN, type ScheduleInForce } from "../core/schedule/schedule-runner.js";
import type { SqlAccess } from "./txn-records.js";

/**
 * The schedule that governs this intersection and the manual override over it, in the store's
 * `schedule_in_force` table (migration 6): what a restarted gateway runs by. The schedule's body is in
 * `plans`, under its schedule key (core/schedule/committed-change.ts).
 */
export type { ScheduleInForce };

export function writeScheduleInForce(q: SqlAccess, s: ScheduleInForce): void {
  q.statement(
    "INSERT OR REPLACE INTO schedule_in_force (id, schedule_key, version, from_wall_ms, override, taken) VALUES (1, ?, ?, ?, ?, ?)",
  ).run(
    s.scheduleKey,
    s.version,
    s.fromWallMs,
    s.override ? JSON.stringify(s.override) : null,
    JSON.stringify(s.taken ?? []),
  );
}

export function readScheduleInForce(q: SqlAccess): ScheduleInForce | null {
  const row = q
    .statement(
      "SELECT schedule_key, version, from_wall_ms, override, taken FROM schedule_in_force WHERE id = 1",
    )
    .get() as
    | {
        schedule_key: string | null;
        version: number | null;
        from_wall_ms: number | null;
        override: string | null;
        taken: string | null;
      }
    | undefined;
  if (!row) return null;
  return {
    scheduleKey: row.schedule_key,
    version: row.version,
    fromWallMs: row.from_wall_ms,
    override: row.override === null ? null : overrideOf(JSON.parse(row.override) as unknown),
    taken: takenOf(row.taken === null ? [] : (JSON.parse(row.taken) as unknown)),
  };
}

/** A stored override, as far as it still reads as one: anything else is no override. */
function overrideOf(value: unknown): ManualOverride | null {
  const o = value as Partial<ManualOverride> | null;
  if (!o || typeof o.planId !== "string" || typeof o.version !== "number" || typeof o.fromWallMs !== "number")
    return null;
  const end = o.end as { kind?: unknown; untilWallMs?: unknown; atWallMs?: unknown } | undefined;
  if (end?.kind === "hold") return { ...(o as ManualOverride), end: { kind: "hold" } };
  if (end?.kind === "next-change")
    return {
      ...(o as ManualOverride),
      end:
        typeof end.atWallMs === "number" || end.atWallMs === null
          ? { kind: "next-change", atWallMs: end.atWallMs }
          : { kind: "next-change" },
    };
  if (end?.kind === "until" && typeof end.untilWallMs === "number")
    return { ...(o as ManualOverride), end: { kind: "until", untilWallMs: end.untilWallMs } };
  return null;
}

/** The stored transaction ids, as far as they are ids (at most MAX_TAKEN of them). */
function takenOf(value: unknown): string[] {
  return Array.isArray(value)
    ? value.filter((id): id is string => typeof id === "string").slice(-MAX_TAKEN)
    : [];
}
