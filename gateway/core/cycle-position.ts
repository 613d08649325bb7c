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
 * clearing to flash or to a stop). Stages end at planned instants, each the previous one's plus its
 * duration, so the cycle's start is the current stage's planned end less the stages run so far.
 */
export function cyclePosition(s: SequencerState): CyclePosition | null {
  if (s.mode !== "running") return null;
  const stage = s.plan.stages[s.stage];
  if (!stage) return null;
  const throughCurrent = s.cycleDurationsMs.slice(0, s.stage + 1).reduce((a, b) => a + b, 0);
  return {
    stage: stage.id,
    startedMonoMs: s.stagePlannedEndMs - throughCurrent,
    lengthMs: s.cycleDurationsMs.reduce((a, b) => a + b, 0),
    offsetErrorMs: s.offsetErrorMs,
    inStep: s.inStep,
  };
}
