import {
  type ControllerEvent,
  type ControllerMode,
  type ControllerState,
  readyToStop,
} from "../core/controller.js";
import type { Intersection, IntersectionPlan, Lamps } from "../core/model.js";
import { invariant } from "../core/invariant.js";
import type { Clock } from "./clock.js";
import type { LatchStore } from "../core/latch-store.js";
import { type ControllerHooks, ControllerShell } from "./controller-shell.js";

export interface ExchangeOutcome {
  /** What the field reports back, or null when there is no complete readback this tick. */
  readonly observed: readonly Lamps[] | null;
  /** The detector inputs read with it, by detector index (null: no reading); absent: none read. */
  readonly detectorInputs?: readonly (boolean | null)[];
  /** Devices silent for longer than their fault window. */
  readonly lost: readonly { readonly device: string; readonly detail: string }[];
  /** Lamps a module's watchdog dropped before the first write of this run (OutputStage), and what shows now. */
  readonly fieldDropped?: { readonly detail: string; readonly observed: readonly Lamps[] | null } | null;
}

export interface RunnerHooks extends ControllerHooks {
  /** Writes the lamps to the field and reads them back; the next tick waits for it. */
  exchange?(lamps: readonly Lamps[]): Promise<ExchangeOutcome>;
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

export { LATCH_RETRY_MS } from "./controller-shell.js";

/** How a clean stop ended: all-red reached, the bound ran out, or a second request cut it short. */
export type StopOutcome = "clean" | "bound-exceeded" | "cut";

/**
 * The imperative shell around one intersection's controller: drives it with ticks from a timer, on a
 * fixed grid, exchanging each tick's lamps with the field; its effects are carried out by the
 * controller's one interpreter (controller-shell.ts), which the simulator runs too.
 */
export class IntersectionRunner {
  private readonly shell: ControllerShell;
  private timer: NodeJS.Timeout | null = null;
  private nextTickMono = 0;
  private running = false;
  /** When the last tick finished (monotonic ms), for the health check. */
  lastTickMono: number | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  /** Set while a clean stop waits for all-red to be written and exchanged. */
  private stopWaiter: ((outcome: StopOutcome) => void) | null = null;

  constructor(
    intersection: Intersection,
    plan: IntersectionPlan,
    private readonly clock: Clock,
    latchStore: LatchStore,
    private readonly hooks: RunnerHooks,
    readonly tickMs = 100,
  ) {
    this.shell = new ControllerShell(intersection, plan, latchStore, hooks, clock.now());
  }

  /** The intersection configuration in force (a reload takes effect at a cycle boundary). */
  get intersection(): Intersection {
    return this.shell.controller.seq.intersection;
  }

  get mode(): ControllerMode {
    return this.shell.mode;
  }

  get controller(): ControllerState {
    return this.shell.controller;
  }

  /** A latch held in memory only (its store write failed) is not durable: see ControllerShell. */
  get latchDurable(): boolean {
    return this.shell.latchDurable;
  }

  dispatch(event: ControllerEvent): readonly Lamps[] | null {
    return this.shell.dispatch(event, this.clock.now());
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
      const tickStart = this.clock.now().monoMs;
      const lamps = this.dispatch({ type: "tick" });
      this.shell.retryLatch(this.clock.now());
      if (this.hooks.exchange && lamps) {
        const outcome = await this.hooks.exchange(lamps);
        for (const lost of outcome.lost)
          this.dispatch({ type: "device-lost", device: lost.device, detail: lost.detail });
        const dropped = outcome.fieldDropped;
        // Dropped before anything was written: the start-up is decided again from what shows now; if not
        // every module could be read, nothing proves what shows: a fault (flash) instead.
        if (dropped?.observed)
          this.dispatch({ type: "field-dropped", observed: dropped.observed, detail: dropped.detail });
        else if (dropped)
          this.dispatch({ type: "device-lost", device: "(start-up)", detail: dropped.detail });
        if (outcome.observed) this.dispatch({ type: "readback", observed: outcome.observed });
        if (outcome.detectorInputs && outcome.detectorInputs.length > 0)
          this.dispatch({ type: "detectors", readings: outcome.detectorInputs });
      }
      if (this.stopWaiter && readyToStop(this.shell.controller)) this.stopWaiter("clean");
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
}
