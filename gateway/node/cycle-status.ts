import { cyclePosition } from "../core/cycle-position.js";
import type { SequencerState } from "../core/sequencer-types.js";
import type { Now } from "../core/time.js";
import type { CycleStatus } from "../protocol/messages.js";

/**
 * The status's `cycle`: the sequencer's cycle position with its start on the wall clock. The status
 * is published whenever it differs from the last one published (ticks every 100 ms), so nothing in it
 * may change each tick: no cycle second (a reader computes it from `startedAt`), and the start's wall
 * instant is taken once per cycle — converted again at each tick it would jitter by a millisecond
 * between the two clocks' readings.
 */
export class CycleStatusReader {
  private start: { monoMs: number; wallMs: number } | null = null;

  read(seq: SequencerState, now: Now): CycleStatus | null {
    const position = cyclePosition(seq);
    if (!position) return null;
    if (this.start?.monoMs !== position.startedMonoMs) {
      this.start = {
        monoMs: position.startedMonoMs,
        wallMs: now.wallMs - (now.monoMs - position.startedMonoMs),
      };
    }
    return {
      stage: position.stage,
      startedAt: new Date(this.start.wallMs).toISOString(),
      lengthMs: position.lengthMs,
      offsetErrorMs: position.offsetErrorMs,
      inStep: position.inStep,
    };
  }
}
