import type { PreparedTxn } from "../core/corridor/participant.js";
import type { ControllerEvent } from "../core/controller.js";
import type { IntersectionPlan } from "../core/model.js";
import { scheduleKey } from "../core/schedule/committed-change.js";
import {
  type CompiledSchedule,
  type ControllerView,
  type ManualOverride,
  NO_SCHEDULE,
  type OverrideEnd,
  type ScheduleInForce,
  type ScheduleRunnerEffect,
  type ScheduleRunnerState,
  scheduleView,
  stepScheduleRunner,
} from "../core/schedule/schedule-runner.js";
import type { Clock } from "./clock.js";

/**
 * The one interpreter of an intersection's schedule runner (core/schedule/schedule-runner.ts), for the
 * gateway and the deterministic simulator alike: it feeds the machine the committed schedules, the
 * manual plan changes and the ticks, and carries out its effects on the controller and the disk.
 */
export interface ScheduleShellPorts {
  readonly controller: {
    dispatch(
      event: Extract<
        ControllerEvent,
        { type: "schedule-plan" | "withdraw-plan" | "enter-flash" | "leave-flash" }
      >,
    ): void;
    view(): ControllerView;
  };
  readonly disk: {
    /** Forced: the schedule that governs, and the override, survive a restart. */
    persist(record: ScheduleInForce): void;
  };
  readonly clock: Clock;
  readonly report: (message: string) => void;
  readonly audit: (type: string, actor: string | null, detail: Record<string, unknown>) => void;
  readonly changed: () => void;
  /** The machine's step, injectable so that the simulator can plant a deliberate bug (its mutations). */
  readonly step?: typeof stepScheduleRunner;
}

export class ScheduleShell {
  private state: ScheduleRunnerState;
  private readonly step: typeof stepScheduleRunner;
  readonly counters = { adopted: 0, overrides: 0, handedOver: 0, flashes: 0 };

  constructor(
    private readonly ports: ScheduleShellPorts,
    restored: ScheduleRunnerState = NO_SCHEDULE,
  ) {
    this.state = restored;
    this.step = ports.step ?? stepScheduleRunner;
  }

  get runnerState(): ScheduleRunnerState {
    return this.state;
  }

  /** A schedule committed for the corridor: it governs from the transaction's activation instant. */
  adopt(compiled: CompiledSchedule, txn: PreparedTxn): void {
    const before = this.state.compiled;
    this.run({ type: "adopt", compiled, fromWallMs: txn.activationWallMs, txnId: txn.txnId });
    if (this.state.compiled !== before) {
      this.counters.adopted++;
      this.ports.audit("schedule-adopted", txn.coordinator, {
        txnId: txn.txnId,
        schedule: compiled.scheduleId,
        version: compiled.version,
        fromWallMs: txn.activationWallMs,
      });
    }
  }

  /**
   * A manual plan change committed for the corridor, before it is handed to the controller: while a
   * schedule runs, it overrides it until the end its push stated.
   */
  manual(plan: IntersectionPlan, txn: PreparedTxn): void {
    const until = txn.plan.until;
    const end: OverrideEnd =
      until === undefined
        ? { kind: "next-change" }
        : until === "hold"
          ? { kind: "hold" }
          : { kind: "until", untilWallMs: until };
    const override: ManualOverride = {
      planId: plan.planId,
      version: plan.version,
      fromWallMs: txn.activationWallMs,
      end,
      by: txn.coordinator,
      txnId: txn.txnId,
    };
    const before = this.state.override;
    this.run({ type: "manual", override, txnId: txn.txnId });
    // Audited when it overrides a running schedule (taken again after a restart, or with none: not).
    if (this.state.override !== before && this.state.override !== null) {
      this.counters.overrides++;
      this.ports.audit("schedule-overridden", txn.coordinator, { txnId: txn.txnId, ...override });
    }
  }

  /** A manual change cancelled before its instant: its override, if it is the one in force, ends. */
  cancelManual(txnId: string): void {
    const before = this.state.override;
    this.run({ type: "cancel-manual", txnId });
    if (before !== null && this.state.override === null)
      this.ports.audit("schedule-override-cancelled", null, { txnId });
  }

  tick(): void {
    if (!this.state.compiled) return;
    this.run({ type: "tick", controller: this.ports.controller.view() });
  }

  /** The status's view: why the plan runs, and the next change. */
  view() {
    return scheduleView(this.state, this.ports.clock.now().wallMs);
  }

  private run(event: Parameters<typeof stepScheduleRunner>[1]): void {
    const step = this.step(this.state, event, this.ports.clock.now().wallMs);
    this.state = step.state;
    for (const effect of step.effects) this.carryOut(effect);
    if (step.effects.length > 0) this.ports.changed();
  }

  private carryOut(effect: ScheduleRunnerEffect): void {
    const { controller, disk } = this.ports;
    switch (effect.type) {
      case "schedule-plan":
        this.counters.handedOver++;
        return controller.dispatch({
          type: "schedule-plan",
          plan: effect.plan,
          activationWallMs: effect.activationWallMs,
          txnId: effect.changeId,
        });
      case "withdraw-plan":
        return controller.dispatch({ type: "withdraw-plan", txnId: effect.changeId });
      case "enter-flash":
        this.counters.flashes++;
        this.ports.audit("schedule-flash", null, { on: true });
        return controller.dispatch({ type: "enter-flash" });
      case "leave-flash":
        this.ports.audit("schedule-flash", null, { on: false });
        return controller.dispatch({ type: "leave-flash" });
      case "persist":
        return disk.persist({
          scheduleKey: effect.schedule ? scheduleKey(effect.schedule.scheduleId) : null,
          version: effect.schedule?.version ?? null,
          fromWallMs: effect.schedule?.fromWallMs ?? null,
          override: effect.override,
          taken: effect.taken,
        });
      case "report":
        this.ports.report(effect.message);
        return this.ports.audit("schedule-report", null, { message: effect.message });
    }
  }
}
