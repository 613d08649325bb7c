import type { SequencerState } from "./sequencer-types.js";

/** Where a running sequence is in its cycle: what the status needs to answer "is the wave in step". */
export interface CyclePosition {
  /** The stage running now (its id in the plan). */
  readonly stage: string;
  /** The monotonic instant the current cycle began (the tick that started its stage 0). */
  readonly startedMonoMs: number;
  /** This cycle's length after its offset correction (the plan's cycle ± the correction). */
  readonly lengthMs: number;
  /** At this cycle's start, how far it was from where the plan's offset puts it (positive: late). */
  readonly offsetErrorMs: number;
  readonly inStep: boolean;
}

/**
 * The cycle position of a running sequence; null while it is not sequencing a plan (start-up, flash,
 * clearing to flash or to a stop). The cycle's windows are planned at its start: it ends with the last
 * one, whichever stage is shown (an actuated plan's coordinated stage may rest across a boundary).
 */
export function cyclePosition(s: SequencerState): CyclePosition | null {
  if (s.mode !== "running") return null;
  const stage = s.plan.stages[s.stage];
  if (!stage) return null;
  const endMs = s.windowEndsMs.at(-1) ?? s.cycleStartMs;
  return {
    stage: stage.id,
    startedMonoMs: s.cycleStartMs,
    lengthMs: endMs - s.cycleStartMs,
    offsetErrorMs: s.offsetErrorMs,
    inStep: s.inStep,
  };
}
