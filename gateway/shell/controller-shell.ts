import {
  type ControllerEffect,
  type ControllerEvent,
  type ControllerMode,
  type ControllerState,
  controllerMode,
  startController,
  stepController,
} from "../core/controller.js";
import type { LatchStore } from "../core/latch-store.js";
import type { Aspect, Intersection, IntersectionPlan, Lamps } from "../core/model.js";
import type { FaultLatch } from "../core/monitor.js";
import type { SignalEvent } from "../core/sequencer.js";
import type { Now } from "../core/time.js";

export interface ControllerHooks {
  /** Sees every output written (the field, a display, the simulator's checker). */
  writeOutputs?(aspects: readonly Aspect[], lamps: readonly Lamps[]): void;
  onSignal?(event: SignalEvent): void;
  onFault?(latch: FaultLatch): void;
  onReset?(by: string): void;
  onStoreError?(message: string): void;
}

/** How often a latched fault that could not be stored is written again. */
export const LATCH_RETRY_MS = 5000;

/**
 * The one interpreter of the controller machine's effects, whoever drives its time: the gateway's
 * runner (real timers) and the deterministic simulator (a virtual clock) alike. Effects are carried
 * out in order: the latch is force-written before the flash outputs that follow it; a latch that
 * cannot be stored still holds in memory (the flash goes on), is reported, and is written again.
 */
export class ControllerShell {
  private state: ControllerState;
  /** A latched fault whose store write failed: held in memory and retried. */
  private undurableLatch: FaultLatch | null = null;
  private lastLatchAttemptMono = 0;

  constructor(
    intersection: Intersection,
    plan: IntersectionPlan,
    private readonly latchStore: LatchStore,
    private readonly hooks: ControllerHooks,
    now: Now,
  ) {
    this.state = startController(intersection, plan, latchStore.load(), now);
  }

  get controller(): ControllerState {
    return this.state;
  }

  get mode(): ControllerMode {
    return controllerMode(this.state);
  }

  /**
   * False while a latched fault is held in memory only: its store write failed in every copy, and a
   * restart now would lose it. (A write that reached one copy of two is retried too, but is durable.)
   */
  get latchDurable(): boolean {
    return this.undurableLatch === null || this.latchStore.latchDurability?.durable === true;
  }

  /** Steps the controller and carries out its effects; returns the lamps this step wrote, if any. */
  dispatch(event: ControllerEvent, now: Now): readonly Lamps[] | null {
    const step = stepController(this.state, event, now);
    this.state = step.state;
    let written: readonly Lamps[] | null = null;
    for (const effect of step.effects) written = this.execute(effect, now) ?? written;
    return written;
  }

  /** Writes a latch held in memory only again, at most every LATCH_RETRY_MS. */
  retryLatch(now: Now): void {
    if (this.undurableLatch && now.monoMs - this.lastLatchAttemptMono >= LATCH_RETRY_MS)
      this.persistLatch(now);
  }

  private persistLatch(now: Now): void {
    const latch = this.undurableLatch;
    if (!latch) return;
    this.lastLatchAttemptMono = now.monoMs;
    try {
      this.latchStore.save(latch);
      this.undurableLatch = null;
    } catch (error) {
      this.hooks.onStoreError?.(
        `cannot store the latched fault (the intersection stays in flash; a restart now would lose the latch; retrying every ${LATCH_RETRY_MS / 1000} s): ${(error as Error).message}`,
      );
    }
  }

  private execute(effect: ControllerEffect, now: Now): readonly Lamps[] | null {
    switch (effect.type) {
      case "persist-latch":
        this.undurableLatch = effect.latch;
        this.persistLatch(now);
        this.hooks.onFault?.(effect.latch);
        return null;
      case "clear-latch":
        this.undurableLatch = null;
        try {
          this.latchStore.clear(effect.by);
        } catch (error) {
          this.hooks.onStoreError?.(`cannot clear the stored fault: ${(error as Error).message}`);
        }
        this.hooks.onReset?.(effect.by);
        return null;
      case "write-outputs":
        this.hooks.writeOutputs?.(effect.aspects, effect.lamps);
        return effect.lamps;
      case "signal":
        this.hooks.onSignal?.(effect.event);
        return null;
    }
  }
}
