import type { Aspect } from "../core/model.js";
import type { FaultLatch } from "../core/monitor.js";
import type { SignalEvent } from "../core/sequencer.js";

/**
 * What happens in a gateway that its features may want to hear of: the controller's signals, faults
 * and resets, the network coming and going, a stop beginning. Features subscribe; the composition root
 * and the runner's hooks publish. Synchronous and in registration order, like the runner's effects.
 */
export interface GatewayEvents {
  signal: SignalEvent;
  /** The aspects the controller wrote (every tick; the controller's state is already the new one). */
  outputs: { readonly aspects: readonly Aspect[] };
  fault: FaultLatch;
  reset: { readonly by: string };
  /** Something the status shows may have changed. */
  changed: undefined;
  connected: undefined;
  stopping: undefined;
  /** A finished tick; answered: every module acknowledged its exchange (null: no modules). */
  tick: { readonly answered: boolean | null };
}

type Listener<T> = (payload: T) => void;

export class GatewayBus {
  private readonly listeners: { [K in keyof GatewayEvents]?: Listener<GatewayEvents[K]>[] } = {};

  on<K extends keyof GatewayEvents>(event: K, listener: Listener<GatewayEvents[K]>): void {
    const list = (this.listeners[event] ??= []) as Listener<GatewayEvents[K]>[];
    list.push(listener);
  }

  emit<K extends keyof GatewayEvents>(
    event: K,
    ...payload: GatewayEvents[K] extends undefined ? [] : [GatewayEvents[K]]
  ): void {
    for (const listener of (this.listeners[event] ?? []) as Listener<GatewayEvents[K]>[])
      listener(payload[0] as GatewayEvents[K]);
  }
}
