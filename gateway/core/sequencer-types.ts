import type { DetectorEvent, GroupDemand } from "./detectors.js";
import type { Intersection, IntersectionPlan } from "./model.js";

/** The sequencer's state, events and what it reports (sequencer.ts is the machine). */

/** The interval a signal group is in while the sequence runs. */
export type GroupInterval = "go" | "clearance" | "red-clearance" | "rest";

export interface GroupTimer {
  readonly interval: GroupInterval;
  readonly sinceMs: number;
}

export type SequencerMode =
  | "startup-clearing"
  | "startup-flash"
  | "startup-all-red"
  | "running"
  | "clearing-to-flash"
  | "flash"
  /** Leaving scheduled flash that was asked for while its clearances still ran: on to all-red. */
  | "clearing-to-all-red"
  /** A clean stop: every interval ends through its clearances... */
  | "clearing-to-stop"
  /** ...to all-red, held until the shell hands the lamps to the module's safe state. */
  | "stopped";

/** The mode reported to operators ("hold": a maintenance hold keeps the stage shown). */
export type ReportedMode = "startup" | "coordinated" | "transition" | "hold" | "flash" | "stopping";

/**
 * How the last run on this store ended, as the shell proves it (core/start-up.ts decides what it allows):
 * `unknown` — no proof, or another intersection configuration or plan: the full start-up;
 * `stopped-clean` — a clean stop that reached all-red, same configuration: no start-up flash;
 * `ended-abruptly` — a crash or a kill, same configuration and plan: the lamps, if they still show the
 * stage the clock says, are taken over where they are.
 */
export type PreviousRun = "unknown" | "stopped-clean" | "ended-abruptly";

/** A maintenance hold: the stage shown stays until it is released, or until `untilMs` (monotonic). */
export interface Hold {
  readonly untilMs: number;
  readonly by: string;
}

export interface PendingPlan {
  readonly plan: IntersectionPlan;
  readonly activationWallMs: number;
  /** The corridor transaction that committed it; null for a local change (the demo's, a restart's). */
  readonly txnId: string | null;
  /**
   * A changed intersection configuration (a reload), which takes effect with this plan at its boundary:
   * the plan was compiled against it. Same groups in the same order (the shell refuses anything else).
   */
  readonly intersection?: Intersection;
}

export interface NextStage {
  readonly plan: IntersectionPlan;
  readonly index: number;
  /** Set when this next stage starts a newly activated plan. */
  readonly activation: PendingPlan | null;
  /**
   * The changes that activation superseded (due at the same boundary, older): taken out of the waiting
   * ones, they come back if the activation is withdrawn before the boundary.
   */
  readonly superseded?: readonly PendingPlan[];
  /** The groups it serves (all its members, but for the walks of an actuated stage nobody called). */
  readonly served: readonly boolean[];
  /** It starts a new cycle (the plan's first stage, or an actuated plan's first called one). */
  readonly boundary: boolean;
  /** The coordinated stage of the next cycle, started early (early return to green). */
  readonly ahead?: boolean;
}

/** The stage shown by an actuated-coordinated plan: how long it has been green, and how it ends. */
export interface ActuatedRun {
  /** When the stage's green began (its minimum and maximum green count from here). */
  readonly goStartMs: number;
  /** The last instant a vehicle extended it (its passage time counts from here). */
  readonly lastExtendMs: number;
  /** Set once it gapped out or maxed out: it ends as soon as its minimums allow. */
  readonly ended: "gap-out" | "max-out" | null;
  /** The coordinated stage of the next cycle, started before this cycle's end. */
  readonly ahead: boolean;
}

export interface SequencerState {
  readonly intersection: Intersection;
  readonly mode: SequencerMode;
  readonly modeSinceMs: number;
  readonly plan: IntersectionPlan;
  readonly pending: readonly PendingPlan[];
  readonly groups: readonly GroupTimer[];
  readonly stage: number;
  readonly stagePlannedEndMs: number;
  /** Decided when the current stage starts, so that the right groups start their clearances in time. */
  readonly next: NextStage | null;
  readonly cycleDurationsMs: readonly number[];
  /** When the current cycle began (monotonic), and each stage's window end in it: the force-offs. */
  readonly cycleStartMs: number;
  readonly windowEndsMs: readonly number[];
  /** The groups the current stage serves (all its members, or fewer in an actuated stage). */
  readonly served: readonly boolean[];
  /** By stage: served in this cycle, and (started early) in the next one (actuated plans serve a stage once a cycle). */
  readonly servedThisCycle: readonly boolean[];
  readonly servedNextCycle: readonly boolean[];
  /** Each group's latest demand from the detectors; null before the first reading (no calls). */
  readonly demand: readonly GroupDemand[] | null;
  /** Set while an actuated-coordinated plan runs. */
  readonly actuated: ActuatedRun | null;
  readonly offsetErrorMs: number;
  readonly inStep: boolean;
  readonly cycles: number;
  /** An operator's flash request, applied at the next tick. */
  readonly flashRequest: "enter" | "leave" | null;
  /** The process is stopping: applied at the next tick, and final (flash requests no longer count). */
  readonly stopRequested: boolean;
  /** A maintenance hold in force (running only), or null. */
  readonly held: Hold | null;
  /**
   * No group starts its go interval before this instant (monotonic): after the lamps were taken over,
   * a pedestrian clearance the readback cannot see (a frozen flashing DON'T WALK) is given its full time.
   */
  readonly noGoBeforeMs: number;
}

export type SequencerEvent =
  | { readonly type: "tick" }
  | {
      readonly type: "schedule-plan";
      readonly plan: IntersectionPlan;
      readonly activationWallMs: number;
      readonly txnId?: string | null;
      /** A reloaded intersection configuration that takes effect with the plan (PendingPlan.intersection). */
      readonly intersection?: Intersection;
    }
  /**
   * Take back a waiting plan change (by the id it was scheduled with) before it takes effect: a
   * schedule's change that a manual one overrides. One already taken is not undone.
   */
  | { readonly type: "withdraw-plan"; readonly txnId: string }
  | { readonly type: "enter-flash" }
  | { readonly type: "leave-flash" }
  /** End every interval through its clearances to all-red (the process is about to stop). */
  | { readonly type: "stop" }
  | { readonly type: "restart" }
  /**
   * Before the first tick: what the field shows (a gateway restarted while its module still holds the
   * dead process's lamps). Groups showing go or clearance are taken over and cleared properly before
   * the start-up flash, never cut.
   */
  | {
      readonly type: "adopt";
      readonly intervals: readonly GroupInterval[];
      /** Every vehicle head shows steady red and no WALK is lit (what a clean stop leaves). */
      readonly allRed?: boolean;
      /** How the last run ended (absent: unknown, the full start-up). */
      readonly previous?: PreviousRun;
      /** Some lamp is lit: the module holds lamps a run left (absent: taken as lit). */
      readonly lit?: boolean;
    }
  /**
   * The lamps a start-up decided from are gone before its first write (a module's watchdog dropped them):
   * start again from what shows now — cleared first, then the full start-up.
   */
  | { readonly type: "re-adopt"; readonly intervals: readonly GroupInterval[]; readonly reason: string }
  /** Hold the stage shown (maintenance) for at most `forMs`, or release the hold. */
  | { readonly type: "hold"; readonly forMs: number; readonly by: string }
  | { readonly type: "release-hold"; readonly by: string }
  /** The detectors' latest demand, by group (core/detectors.ts): the next tick acts on it. */
  | { readonly type: "demand"; readonly groups: readonly GroupDemand[] };

export type SignalEvent =
  | { readonly type: "mode"; readonly mode: ReportedMode; readonly previous: ReportedMode }
  | {
      readonly type: "cycle-start";
      readonly planId: string;
      readonly offsetErrorMs: number;
      readonly correctionMs: number;
      /** Set when a start-up entered the cycle at this stage, where the clock puts it (start-up.ts). */
      readonly entered?: string;
    }
  | { readonly type: "stage-start"; readonly planId: string; readonly stage: string }
  | {
      readonly type: "plan-activated";
      readonly planId: string;
      readonly version: number;
      /** The corridor transaction that committed it (it travels with the plan), or null. */
      readonly txnId: string | null;
      readonly activationWallMs: number;
      /** How long after the activation instant the switching cycle boundary fell. */
      readonly lateByMs: number;
    }
  | { readonly type: "plan-scheduled"; readonly planId: string; readonly activationWallMs: number }
  | { readonly type: "plan-superseded"; readonly planId: string; readonly by: string }
  | { readonly type: "plan-withdrawn"; readonly planId: string; readonly txnId: string }
  | { readonly type: "plan-rejected"; readonly planId: string; readonly reason: string }
  /** An actuated stage ended before, or at, its force-off; `groups`: its vehicle groups. */
  | {
      readonly type: "stage-terminated";
      readonly planId: string;
      readonly stage: string;
      readonly reason: "gap-out" | "max-out" | "force-off";
      readonly groups: readonly number[];
    }
  /** A maintenance hold began, or ended (released by an operator, expired, or ended by flash or stop). */
  | {
      readonly type: "hold";
      readonly held: boolean;
      readonly by: string;
      readonly stage: string;
      readonly reason: "operator" | "expired" | "flash" | "stop" | "fault";
    }
  /** How this run started (core/start-up.ts): the lamps taken over, no start-up flash, or the full start-up. */
  | {
      readonly type: "start-up";
      readonly how: "resumed" | "warm" | "cold";
      readonly reason: string;
    }
  | DetectorEvent;

export interface SequencerStep {
  readonly state: SequencerState;
  readonly events: readonly SignalEvent[];
}
