import {
  type ControllerEvent,
  type ControllerState,
  controllerMode,
  startController,
  stepController,
} from "../../gateway/core/controller.js";
import type { Aspect, Intersection, IntersectionPlan, Lamps } from "../../gateway/core/model.js";
import type { SignalEvent } from "../../gateway/core/sequencer.js";
import type { Now } from "../../gateway/core/time.js";

export interface TimedSignal {
  readonly now: Now;
  readonly event: SignalEvent;
}

/**
 * Drives one controller on a virtual clock, the way the gateway's shell does: a tick, the outputs it
 * writes, and a readback of a perfect field. Used by property tests and benchmarks alike.
 */
export class VirtualIntersection {
  state: ControllerState;
  monoMs: number;
  wallMs: number;
  readonly signals: TimedSignal[] = [];
  lastAspects: readonly Aspect[] = [];
  lastLamps: readonly Lamps[] = [];

  constructor(intersection: Intersection, plan: IntersectionPlan, start: Now) {
    this.monoMs = start.monoMs;
    this.wallMs = start.wallMs;
    this.state = startController(intersection, plan, null, start);
  }

  get now(): Now {
    return { monoMs: this.monoMs, wallMs: this.wallMs };
  }

  get mode() {
    return controllerMode(this.state);
  }

  dispatch(event: ControllerEvent): void {
    const step = stepController(this.state, event, this.now);
    this.state = step.state;
    for (const effect of step.effects) {
      if (effect.type === "write-outputs") {
        this.lastAspects = effect.aspects;
        this.lastLamps = effect.lamps;
      } else if (effect.type === "signal") {
        this.signals.push({ now: this.now, event: effect.event });
      }
    }
  }

  /** Advances both clocks, ticks, and reads back exactly what was written (or `observed`). */
  tick(advanceMs: number, observed?: (written: readonly Lamps[]) => readonly Lamps[]): void {
    this.monoMs += advanceMs;
    this.wallMs += advanceMs;
    this.dispatch({ type: "tick" });
    this.dispatch({ type: "readback", observed: observed ? observed(this.lastLamps) : this.lastLamps });
  }
}
