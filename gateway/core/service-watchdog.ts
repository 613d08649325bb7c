/**
 * What the gateway tells its service manager (systemd's notify protocol), decided from what the
 * control loop did: READY once the first safe output reached every module, a watchdog ping only while
 * the loop ticks on time AND the modules answer, STOPPING when a stop begins. A timer that only proves
 * the event loop is alive would keep a gateway with a stuck tick or a dead bus "healthy"; here the
 * ping is earned by the loop itself.
 */
import { invariant } from "./invariant.js";

export interface ServiceWatchdogConfig {
  /**
   * The longest a tick (or, with modules, an answer from every module) may be ago for a ping to be
   * sent: past it, the loop is stuck or the bus is dead and the service manager must find out.
   */
  readonly staleAfterMs: number;
  /** The service manager's watchdog period; null: it keeps no watchdog, READY and STOPPING only. */
  readonly watchdogMs: number | null;
}

export interface ServiceWatchdogState {
  readonly ready: boolean;
  readonly stopping: boolean;
  /** Monotonic ms of the last finished tick, and of the last tick in which every module answered. */
  readonly lastTickMs: number | null;
  readonly lastAnsweredMs: number | null;
  /** Whether the last check sent a ping: a change is said once, in the log. */
  readonly pinging: boolean;
  readonly lastStatus: string | null;
}

export type ServiceWatchdogEvent =
  /** A finished tick; answered: every module acknowledged its exchange (null: no modules at all). */
  | { readonly type: "tick"; readonly answered: boolean | null }
  /** The periodic look, a few times per watchdog period. */
  | { readonly type: "check" }
  | { readonly type: "status"; readonly text: string }
  | { readonly type: "stopping" };

export type ServiceWatchdogEffect =
  | { readonly type: "notify"; readonly message: string }
  | { readonly type: "log"; readonly level: "info" | "warn"; readonly message: string };

export interface ServiceWatchdogStep {
  readonly state: ServiceWatchdogState;
  readonly effects: readonly ServiceWatchdogEffect[];
}

export const INITIAL_SERVICE_WATCHDOG: ServiceWatchdogState = {
  ready: false,
  stopping: false,
  lastTickMs: null,
  lastAnsweredMs: null,
  pinging: true,
  lastStatus: null,
};

/** A status line goes in one datagram; longer text is cut, never split. */
const MAX_STATUS_CHARS = 200;

/** How often to look, per watchdog period: one missed look must not be the one that kills. */
export const CHECKS_PER_WATCHDOG_PERIOD = 4;

export function stepServiceWatchdog(
  config: ServiceWatchdogConfig,
  state: ServiceWatchdogState,
  event: ServiceWatchdogEvent,
  nowMs: number,
): ServiceWatchdogStep {
  switch (event.type) {
    case "tick":
      return onTick(state, event.answered, nowMs);
    case "check":
      return onCheck(config, state, nowMs);
    case "status": {
      const text = event.text.replace(/[\r\n]+/g, " ").slice(0, MAX_STATUS_CHARS);
      if (text === state.lastStatus) return { state, effects: [] };
      return {
        state: { ...state, lastStatus: text },
        effects: [{ type: "notify", message: `STATUS=${text}` }],
      };
    }
    case "stopping":
      if (state.stopping) return { state, effects: [] };
      return { state: { ...state, stopping: true }, effects: [{ type: "notify", message: "STOPPING=1" }] };
  }
}

function onTick(state: ServiceWatchdogState, answered: boolean | null, nowMs: number): ServiceWatchdogStep {
  invariant(state.lastTickMs === null || nowMs >= state.lastTickMs, "service watchdog: time ran backwards");
  const lastAnsweredMs = answered === false ? state.lastAnsweredMs : nowMs;
  const next = { ...state, lastTickMs: nowMs, lastAnsweredMs };
  // READY means the first safe output is on the module (start-up flash), not merely "the process runs".
  if (state.ready || answered === false || state.stopping) return { state: next, effects: [] };
  return {
    state: { ...next, ready: true },
    effects: [
      { type: "notify", message: "READY=1" },
      {
        type: "log",
        level: "info",
        message:
          answered === null
            ? "ready: ticking (no modules configured)"
            : "ready: the first safe output reached every module",
      },
    ],
  };
}

/** Why a ping is withheld now, or null when the loop has earned it. */
export function withheldBecause(
  config: ServiceWatchdogConfig,
  state: ServiceWatchdogState,
  nowMs: number,
): string | null {
  if (!state.ready) return "not ready yet";
  if (state.lastTickMs === null || nowMs - state.lastTickMs > config.staleAfterMs)
    return `the control loop has not finished a tick for ${state.lastTickMs === null ? "ever" : `${nowMs - state.lastTickMs} ms`} (stuck tick or starved process)`;
  if (state.lastAnsweredMs === null || nowMs - state.lastAnsweredMs > config.staleAfterMs)
    return `the modules have not all answered for ${state.lastAnsweredMs === null ? "ever" : `${nowMs - state.lastAnsweredMs} ms`} (dead bus or module)`;
  return null;
}

function onCheck(
  config: ServiceWatchdogConfig,
  state: ServiceWatchdogState,
  nowMs: number,
): ServiceWatchdogStep {
  if (config.watchdogMs === null || !state.ready) return { state, effects: [] };
  const why = withheldBecause(config, state, nowMs);
  const effects: ServiceWatchdogEffect[] = [];
  if (why === null) effects.push({ type: "notify", message: "WATCHDOG=1" });
  if (why !== null && state.pinging)
    effects.push({
      type: "log",
      level: "warn",
      message: `watchdog ping withheld: ${why}; the service manager restarts the gateway if this lasts ${config.watchdogMs} ms`,
    });
  if (why === null && !state.pinging)
    effects.push({
      type: "log",
      level: "info",
      message: "watchdog pings resumed: the loop ticks and the modules answer",
    });
  return { state: { ...state, pinging: why === null }, effects };
}
