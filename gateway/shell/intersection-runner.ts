import {
  type ControllerEffect,
  type ControllerEvent,
  type ControllerMode,
  type ControllerState,
  controllerMode,
  startController,
  stepController,
} from "../core/controller.js";
import type { Aspect, Intersection, IntersectionPlan, Lamps } from "../core/model.js";
import type { FaultLatch } from "../core/monitor.js";
import type { SignalEvent } from "../core/sequencer.js";
import type { Clock } from "./clock.js";
import type { LatchStore } from "./latch-store.js";

export interface RunnerHooks {
  /** Writes the lamps to the field (or a simulator). */
  writeOutputs(aspects: readonly Aspect[], lamps: readonly Lamps[]): void;
  onSignal?(event: SignalEvent): void;
  onFault?(latch: FaultLatch): void;
  onReset?(by: string): void;
}

/**
 * The imperative shell around one intersection's controller: drives it with ticks from a timer and
 * carries out its effects, in order. The latch is force-written before the flash outputs that
 * follow it.
 */
export class IntersectionRunner {
  private state: ControllerState;
  private timer: NodeJS.Timeout | null = null;
  private nextTickMono = 0;

  constructor(
    readonly intersection: Intersection,
    plan: IntersectionPlan,
    private readonly clock: Clock,
    private readonly latchStore: LatchStore,
    private readonly hooks: RunnerHooks,
    readonly tickMs = 100,
  ) {
    this.state = startController(intersection, plan, latchStore.load(), clock.now());
  }

  get mode(): ControllerMode {
    return controllerMode(this.state);
  }

  get controller(): ControllerState {
    return this.state;
  }

  dispatch(event: ControllerEvent): void {
    const step = stepController(this.state, event, this.clock.now());
    this.state = step.state;
    for (const effect of step.effects) this.execute(effect);
  }

  start(): void {
    if (this.timer) return;
    this.nextTickMono = this.clock.now().monoMs;
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    // Ticks stay on a fixed grid: a late tick does not push the following ones later.
    this.dispatch({ type: "tick" });
    const now = this.clock.now().monoMs;
    do this.nextTickMono += this.tickMs;
    while (this.nextTickMono <= now);
    this.timer = setTimeout(() => this.schedule(), this.nextTickMono - now);
  }

  private execute(effect: ControllerEffect): void {
    switch (effect.type) {
      case "persist-latch":
        this.latchStore.save(effect.latch);
        this.hooks.onFault?.(effect.latch);
        break;
      case "clear-latch":
        this.latchStore.clear(effect.by);
        this.hooks.onReset?.(effect.by);
        break;
      case "write-outputs":
        this.hooks.writeOutputs(effect.aspects, effect.lamps);
        break;
      case "signal":
        this.hooks.onSignal?.(effect.event);
        break;
    }
  }
}
