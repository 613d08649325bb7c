import { InvariantViolation } from "../../gateway/core/invariant.js";
import type { IntersectionPlan } from "../../gateway/core/model.js";
import { isCompiledSchedule } from "../../gateway/core/schedule/committed-change.js";
import {
  type CompiledSchedule,
  NO_SCHEDULE,
  restoreScheduleRunner,
  type ScheduleRunnerState,
  stepScheduleRunner,
} from "../../gateway/core/schedule/schedule-runner.js";
import type { Now } from "../../gateway/core/time.js";
import { ScheduleShell, type ScheduleShellPorts } from "../../gateway/shell/schedule-shell.js";
import type { Mutation } from "./mutations.js";
import { MachineInvariantBroken } from "./sim-participant-ports.js";
import type { SimDisk } from "./sim-disk.js";

/**
 * The simulator's side of production's schedule shell (gateway/shell/schedule-shell.ts, what a gateway
 * runs: gateway/node/schedule-feature.ts): its ports over the simulated disk and controller, the
 * restore from the disk after a restart as the gateway's `restoreSchedule` does it, and the schedule
 * mutations planted in the machine's step — never in the product code.
 */

/** What the ports need of the simulated gateway around them. */
export interface SimScheduleSite {
  readonly id: string;
  readonly disk: SimDisk;
  readonly mutation: Mutation | null;
  now(): Now;
  /** The controller: its running plan (what production's view reads) and its events. */
  runningPlan(): IntersectionPlan;
  /** The plan changes waiting in the controller for their instants. */
  pendingChanges(): readonly { readonly txnId: string | null; readonly activationWallMs: number }[];
  dispatch(event: Parameters<ScheduleShellPorts["controller"]["dispatch"]>[0]): void;
  trace(line: string): void;
}

/**
 * The schedule in force and the override, as the disk kept them (as `restoreSchedule` reads the store):
 * nothing when the record names a schedule whose body is missing.
 */
export function restoreSimSchedule(disk: SimDisk, trace: (line: string) => void): ScheduleRunnerState {
  const record = disk.scheduleInForce();
  if (!record) return NO_SCHEDULE;
  if (record.scheduleKey === null || record.version === null || record.fromWallMs === null)
    return restoreScheduleRunner(null, 0, null);
  const body = disk.planBody(record.scheduleKey, record.version);
  if (!isCompiledSchedule(body)) {
    trace(`the schedule in force ${record.scheduleKey} v${record.version} is missing from the disk`);
    return NO_SCHEDULE;
  }
  const restored = restoreScheduleRunner(body, record.fromWallMs, record.override);
  // The committed changes the runner had taken, where the record keeps them (proposed to the lead, so
  // that the participant's resume cannot hand them again as new): restored with the rest.
  const taken = (record as { readonly taken?: readonly string[] }).taken;
  if (taken === undefined) return restored;
  const withTaken = { ...restored, taken };
  return withTaken;
}

/** A committed schedule's plans go onto the disk with it (as `recordSchedulePlans`). */
export function recordSimSchedulePlans(disk: SimDisk, compiled: CompiledSchedule, txnId: string): void {
  for (const plan of Object.values(compiled.plans))
    disk.recordPlan(plan.planId, plan.version, plan, `schedule ${compiled.scheduleId} (txn ${txnId})`);
}

export function simScheduleShell(site: SimScheduleSite, restored: ScheduleRunnerState): ScheduleShell {
  return new ScheduleShell(
    {
      controller: {
        dispatch: (event) => site.dispatch(event),
        // As production's view (schedule-feature.ts): the plan the controller runs now, and whether a
        // plan change waits there (the view proposed to the lead: read once the runner knows it).
        view: () => {
          const plan = site.runningPlan();
          const view = {
            planId: plan.planId,
            version: plan.version,
            cycleMs: plan.cycleMs,
            waiting: site.pendingChanges().length > 0,
          };
          return view;
        },
      },
      disk: { persist: (record) => site.disk.setScheduleInForce(record) },
      clock: { now: () => site.now() },
      report: (message) => site.trace(`${site.id} schedule: ${message}`),
      audit: (type, _actor, detail) => {
        if (type !== "schedule-report") site.trace(`${site.id} ${type} ${JSON.stringify(detail)}`);
      },
      changed: () => {},
      step: simStepScheduleRunner(site.mutation),
    },
    restored,
  );
}

/**
 * `stepScheduleRunner` as the simulator runs it: the machine's invariants fail the run, and the schedule
 * mutations:
 * - `switch-at-change-instant`: a plan change is handed over to take effect at the scheduled change's
 *   instant itself instead of the first common cycle boundary at or after it (so each intersection
 *   switches at its own next cycle boundary);
 * - `stale-schedule-version`: a newly committed schedule is taken as governing from its instant, but
 *   the gateway goes on running the one it had.
 */
export function simStepScheduleRunner(mutation: Mutation | null): typeof stepScheduleRunner {
  const step: typeof stepScheduleRunner = (state, event, nowWallMs) => {
    try {
      return stepScheduleRunner(state, event, nowWallMs);
    } catch (error) {
      if (error instanceof InvariantViolation) throw new MachineInvariantBroken(error.message);
      throw error;
    }
  };
  if (mutation === "switch-at-change-instant")
    return (state, event, nowWallMs) => {
      const result = step(state, event, nowWallMs);
      const instant = result.state.issued?.fromWallMs;
      if (instant === undefined) return result;
      return {
        ...result,
        effects: result.effects.map((e) =>
          e.type === "schedule-plan" ? { ...e, activationWallMs: instant } : e,
        ),
      };
    };
  if (mutation === "stale-schedule-version")
    return (state, event, nowWallMs) => {
      if (event.type !== "adopt" || !state.compiled) return step(state, event, nowWallMs);
      return step(state, { ...event, compiled: state.compiled }, nowWallMs);
    };
  return step;
}
