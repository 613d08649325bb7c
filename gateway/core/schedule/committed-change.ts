import type { IntersectionPlan } from "../model.js";
import type { CompiledSchedule } from "./schedule-runner.js";

/**
 * What a corridor transaction commits: a plan, or a whole schedule (with every plan it names). Both
 * travel the same two-phase commit and are stored the same way, by id and version; a schedule's id
 * carries a prefix that no plan id can have (ids are letters, digits, `-` and `_`), so the two never
 * collide in a store or a record.
 */
export type CommittedChange = IntersectionPlan | CompiledSchedule;

const SCHEDULE_PREFIX = "schedule:";

export function scheduleKey(scheduleId: string): string {
  return `${SCHEDULE_PREFIX}${scheduleId}`;
}

export function isScheduleKey(id: string): boolean {
  return id.startsWith(SCHEDULE_PREFIX);
}

/** The schedule id of a schedule key (the key itself for a plan id). */
export function bareId(id: string): string {
  return isScheduleKey(id) ? id.slice(SCHEDULE_PREFIX.length) : id;
}

export function isCompiledSchedule(change: CommittedChange | null | undefined): change is CompiledSchedule {
  return (change as { kind?: unknown } | null | undefined)?.kind === "schedule";
}
