import {
  type ControllerEffect,
  type ControllerEvent,
  type ControllerMode,
  type ControllerState,
  controllerMode,
  readyToStop,
  startController,
  stepController,
} from "../core/controller.js";
import type { Aspect, Intersection, IntersectionPlan, Lamps } from "../core/model.js";
import type { FaultLatch } from "../core/monitor.js";
import type { SignalEvent } from "../core/sequencer.js";
import { invariant } from "../core/invariant.js";
import type { Clock } from "./clock.js";
import type { LatchStore } from "../core/latch-store.js";

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
  /**
   * After each tick and its exchange: how late the tick started against its grid, how long the
   * exchange took, and how many grid slots passed with no tick at all (a stalled loop or a slow bus).
   */
  onTickDone?(info: {
    readonly latenessMs: number;
    readonly exchangeMs: number;
    readonly missedTicks: number;
  }): void;
}

/** How often a latched fault that could not be stored is written again. */
export const LATCH_RETRY_MS = 5000;

/** How a clean stop ended: all-red reached, the bound ran out, or a second request cut it short. */
export type StopOutcome = "clean" | "bound-exceeded" | "cut";

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
  /** A latched fault whose store write failed: held in memory (the flash goes on) and retried. */
  private undurableLatch: FaultLatch | null = null;
  private lastLatchAttemptMono = 0;
  /** Set while a clean stop waits for all-red to be written and exchanged. */
  private stopWaiter: ((outcome: StopOutcome) => void) | null = null;

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

  /**
   * A clean stop: every interval ends through its clearances to all-red (never cut), then ticking
   * stops, with all-red written and exchanged. `boundMs` is a safety net (a stuck sequence must not
   * keep the process forever); `cutShort()` ends the wait at once. Either way the ticking stops, and
   * the caller hands the lamps to the module's safe state.
   */
  async stopCleanly(boundMs: number): Promise<StopOutcome> {
    let outcome: StopOutcome = "clean";
    if (this.running) {
      this.dispatch({ type: "stop" });
      let boundTimer: NodeJS.Timeout | undefined;
      outcome = await new Promise<StopOutcome>((resolve) => {
        this.stopWaiter = resolve;
        boundTimer = setTimeout(() => resolve("bound-exceeded"), boundMs);
      });
      clearTimeout(boundTimer);
      this.stopWaiter = null;
    }
    await this.stop();
    return outcome;
  }

  /** Ends a clean stop's wait now: the clearances in progress are cut (a second stop signal). */
  cutShort(): void {
    this.stopWaiter?.("cut");
  }

  /** Stops ticking at once; resolves when the tick in progress (and its exchange) has finished. */
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
      if (this.undurableLatch && tickStart - this.lastLatchAttemptMono >= LATCH_RETRY_MS) this.persistLatch();
      const lamps = this.written as readonly Lamps[] | null;
      if (this.hooks.exchange && lamps) {
        const outcome = await this.hooks.exchange(lamps);
        for (const lost of outcome.lost)
          this.dispatch({ type: "device-lost", device: lost.device, detail: lost.detail });
        if (outcome.observed) this.dispatch({ type: "readback", observed: outcome.observed });
      }
      if (this.stopWaiter && readyToStop(this.state)) this.stopWaiter("clean");
      // Ticks stay on a fixed grid: a late tick does not push the following ones later. Grid slots
      // that passed while this tick was late or its exchange ran are missed, and counted.
      const now = this.clock.now().monoMs;
      this.lastTickMono = now;
      const latenessMs = Math.max(0, tickStart - this.nextTickMono);
      let slots = 0;
      do {
        this.nextTickMono += this.tickMs;
        slots++;
      } while (this.nextTickMono <= now);
      invariant(slots >= 1, () => `tick grid did not advance at ${now} ms`);
      this.hooks.onTickDone?.({
        latenessMs,
        exchangeMs: now - tickStart,
        missedTicks: slots - 1,
      });
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, this.nextTickMono - now);
      });
      this.wake = null;
    }
  }

  /**
   * False while a latched fault is held in memory only: its store write failed in every copy, and a
   * restart now would lose it. (A write that reached one copy of two is retried too, but is durable.)
   */
  get latchDurable(): boolean {
    return this.undurableLatch === null || this.latchStore.latchDurability?.durable === true;
  }

  private persistLatch(): void {
    const latch = this.undurableLatch;
    if (!latch) return;
    this.lastLatchAttemptMono = this.clock.now().monoMs;
    try {
      this.latchStore.save(latch);
      this.undurableLatch = null;
    } catch (error) {
      this.hooks.onStoreError?.(
        `cannot store the latched fault (the intersection stays in flash; a restart now would lose the latch; retrying every ${LATCH_RETRY_MS / 1000} s): ${(error as Error).message}`,
      );
    }
  }

  private execute(effect: ControllerEffect): void {
    switch (effect.type) {
      case "persist-latch":
        // A latch that cannot be stored still holds in memory: the flash that follows is written
        // regardless, the failure is reported, and the write is tried again until it holds.
        this.undurableLatch = effect.latch;
        this.persistLatch();
        this.hooks.onFault?.(effect.latch);
        break;
      case "clear-latch":
        this.undurableLatch = null;
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
