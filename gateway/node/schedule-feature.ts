import type { IntersectionSetup } from "../config/load.js";
import type { IntersectionPlan } from "../core/model.js";
import { isCompiledSchedule } from "../core/schedule/committed-change.js";
import { actionLabel } from "../core/schedule/calendar.js";
import {
  type CompiledSchedule,
  NO_SCHEDULE,
  restoreScheduleRunner,
  type ScheduleRunnerState,
} from "../core/schedule/schedule-runner.js";
import { sameTimeReference } from "../core/time/time-reference.js";
import type { Status } from "../protocol/messages.js";
import type { Logger } from "../shell/log.js";
import { ScheduleShell } from "../shell/schedule-shell.js";
import { isStoreFailure } from "../store/errors.js";
import type { GatewayStore } from "../store/store.js";
import type { GatewayParts } from "./gateway-parts.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/** How often the schedule is looked at: its changes are handed over 30 s ahead, so this is plenty. */
const SCHEDULE_TICK_MS = 500;

/**
 * The committed schedule this gateway runs by, as its store kept it across a restart (with the manual
 * override over it). A schedule committed under another time reference than the configuration's now
 * still runs (the corridor committed it, and every peer runs it), and the log says so.
 */
export function restoreSchedule(
  setup: IntersectionSetup,
  store: GatewayStore,
  log: Logger,
): ScheduleRunnerState {
  try {
    const record = store.scheduleInForce();
    if (!record) return NO_SCHEDULE;
    if (record.scheduleKey === null || record.version === null || record.fromWallMs === null)
      return restoreScheduleRunner(null, 0, null, record.taken ?? []);
    const body = store.planBody(record.scheduleKey, record.version) as CompiledSchedule | null;
    if (!isCompiledSchedule(body)) {
      log.error(
        { schedule: record.scheduleKey, version: record.version },
        "the schedule in force is missing from the store: running without it; push the schedule again",
      );
      return NO_SCHEDULE;
    }
    if (!sameTimeReference(body.timeReference, setup.corridor.timeReference))
      log.warn(
        { committed: body.timeReference, configured: setup.corridor.timeReference },
        `schedule ${body.scheduleId} v${body.version} was committed with another time reference than the corridor file has now: it runs as committed; push it again to run it by the new one`,
      );
    return restoreScheduleRunner(body, record.fromWallMs, record.override, record.taken ?? []);
  } catch (error) {
    if (!isStoreFailure(error)) throw error;
    log.error({ error: error.message }, "cannot read the schedule in force: running without it");
    return NO_SCHEDULE;
  }
}

/** The gateway's schedule shell: the controller through the runner, the store, the audit trail. */
export function createScheduleShell(parts: GatewayParts, restored: ScheduleRunnerState): ScheduleShell {
  const { runner, store, clock, log, audit, bus } = parts;
  return new ScheduleShell(
    {
      controller: {
        dispatch: (event) => {
          runner.dispatch(event);
          bus.emit("changed");
        },
        view: () => {
          const { plan, pending, next } = runner.controller.seq;
          const waiting = pending.length > 0 || next?.activation != null;
          return { planId: plan.planId, version: plan.version, cycleMs: plan.cycleMs, waiting };
        },
      },
      disk: {
        persist: (record) =>
          degradeOnStoreFailure(
            log,
            "the schedule in force not recorded (a restart may run the previous one)",
            () => store.setScheduleInForce(record),
            undefined,
          ),
      },
      clock,
      report: (message) => log.warn(message),
      audit: (type, actor, detail) => audit.soon(type, actor, detail),
      changed: () => bus.emit("changed"),
    },
    restored,
  );
}

/** A committed schedule's plans go into the store with it: the plan in force must be found after a restart. */
export function recordSchedulePlans(parts: GatewayParts, compiled: CompiledSchedule, txnId: string): void {
  const { store, clock, log } = parts;
  degradeOnStoreFailure(
    log,
    `the plans of schedule ${compiled.scheduleId} v${compiled.version} not recorded`,
    () => {
      for (const plan of Object.values(compiled.plans) as IntersectionPlan[])
        store.recordPlan(
          plan.planId,
          plan.version,
          plan,
          `schedule ${compiled.scheduleId} (txn ${txnId})`,
          clock.now().wallMs,
        );
    },
    undefined,
  );
}

export function tickSchedule(schedule: ScheduleShell): NodeJS.Timeout {
  const timer = setInterval(() => schedule.tick(), SCHEDULE_TICK_MS);
  timer.unref();
  return timer;
}

/** The status's `schedule`: null without a committed schedule. */
export function scheduleStatus(schedule: ScheduleShell): Status["schedule"] {
  const compiled = schedule.runnerState.compiled;
  if (!compiled) return null;
  const { reason, next } = schedule.view();
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: compiled.scheduleId,
    version: compiled.version,
    reason: reason.kind === "none" ? "pending" : reason.kind,
    dayPlan: reason.kind === "scheduled" ? reason.dayPlan : null,
    action: reason.kind === "scheduled" ? reason.action : null,
    manual:
      reason.kind === "manual"
        ? {
            plan: reason.planId,
            by: reason.by,
            until: reason.untilWallMs === null ? null : iso(reason.untilWallMs),
            hold: reason.hold,
          }
        : null,
    next: next ? { at: iso(next.atWallMs), dayPlan: next.dayPlan, action: actionLabel(next.action) } : null,
  };
}
