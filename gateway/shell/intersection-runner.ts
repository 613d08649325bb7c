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

export interface ExchangeOutcome {
  /** What the field reports back, or null when there is no complete readback this tick. */
  readonly observed: readonly Lamps[] | null;
  /** Devices silent for longer than their fault window. */
  readonly lost: readonly { readonly device: string; readonly detail: string }[];
}

export interface RunnerHooks {
  /** Sees every output written (a display, a log). */
  writeOutputs?(aspects: readonly Aspect[], lamps: readonly Lamps[]): void;
  /** Writes the lamps to the field and reads them back; the next tick waits for it. */
  exchange?(lamps: readonly Lamps[]): Promise<ExchangeOutcome>;
  onSignal?(event: SignalEvent): void;
  onFault?(latch: FaultLatch): void;
  onReset?(by: string): void;
  onStoreError?(message: string): void;
  /** After each tick and its exchange: how late the tick started, and how long the exchange took. */
  onTickDone?(info: { readonly latenessMs: number; readonly exchangeMs: number }): void;
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
  private running = false;
  /** When the last tick finished (monotonic ms), for the health check. */
  lastTickMono: number | null = null;
  private written: readonly Lamps[] | null = null;
  private loopDone: Promise<void> = Promise.resolve();

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
    if (this.running) return;
    this.running = true;
    this.nextTickMono = this.clock.now().monoMs;
    this.loopDone = this.loop();
  }

  /** Stops ticking; resolves when the tick in progress (and its exchange) has finished. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.wake?.();
    await this.loopDone;
  }

  private wake: (() => void) | null = null;

  private async loop(): Promise<void> {
    while (this.running) {
      this.written = null;
      const tickStart = this.clock.now().monoMs;
      this.dispatch({ type: "tick" });
      const lamps = this.written as readonly Lamps[] | null;
      if (this.hooks.exchange && lamps) {
        const outcome = await this.hooks.exchange(lamps);
        for (const lost of outcome.lost)
          this.dispatch({ type: "device-lost", device: lost.device, detail: lost.detail });
        if (outcome.observed) this.dispatch({ type: "readback", observed: outcome.observed });
      }
      // Ticks stay on a fixed grid: a late tick does not push the following ones later.
      const now = this.clock.now().monoMs;
      this.lastTickMono = now;
      this.hooks.onTickDone?.({
        latenessMs: Math.max(0, tickStart - this.nextTickMono),
        exchangeMs: now - tickStart,
      });
      do this.nextTickMono += this.tickMs;
      while (this.nextTickMono <= now);
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, this.nextTickMono - now);
      });
      this.wake = null;
    }
  }

  private execute(effect: ControllerEffect): void {
    switch (effect.type) {
      case "persist-latch":
        // A latch that cannot be stored still holds in memory: the flash that follows is written
        // regardless, and the failure is reported.
        try {
          this.latchStore.save(effect.latch);
        } catch (error) {
          this.hooks.onStoreError?.(`cannot store the latched fault: ${(error as Error).message}`);
        }
        this.hooks.onFault?.(effect.latch);
        break;
      case "clear-latch":
        try {
          this.latchStore.clear(effect.by);
        } catch (error) {
          this.hooks.onStoreError?.(`cannot clear the stored fault: ${(error as Error).message}`);
        }
        this.hooks.onReset?.(effect.by);
        break;
      case "write-outputs":
        this.written = effect.lamps;
        this.hooks.writeOutputs?.(effect.aspects, effect.lamps);
        break;
      case "signal":
        this.hooks.onSignal?.(effect.event);
        break;
    }
  }
}
