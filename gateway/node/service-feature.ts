import {
  CHECKS_PER_WATCHDOG_PERIOD,
  INITIAL_SERVICE_WATCHDOG,
  type ServiceWatchdogConfig,
  type ServiceWatchdogEvent,
  type ServiceWatchdogState,
  stepServiceWatchdog,
} from "../core/service-watchdog.js";
import type { ServiceNotifier } from "../shell/systemd-notify.js";
import type { GatewayParts } from "./gateway-parts.js";

export interface ServiceManagerLink {
  readonly notifier: ServiceNotifier;
  /** systemd's watchdog period for this process (WATCHDOG_USEC), or null. */
  readonly watchdogMs: number | null;
}

/** Ticks this many tick periods old (and at least a second) mean a stuck loop or a dead bus. */
const STALE_TICKS = 10;
const MIN_STALE_MS = 1000;

/**
 * The gateway as a systemd service: READY, STATUS, watchdog pings and STOPPING, as the pure machine
 * in core/service-watchdog.ts decides them from the control loop's own ticks and the modules' answers.
 * Returns the function that ends it (at stop).
 */
export function registerServiceFeature(parts: GatewayParts, link: ServiceManagerLink): () => void {
  const { bus, clock, log, runner } = parts;
  const config: ServiceWatchdogConfig = {
    staleAfterMs: Math.max(MIN_STALE_MS, STALE_TICKS * runner.tickMs),
    watchdogMs: link.watchdogMs,
  };
  let state: ServiceWatchdogState = INITIAL_SERVICE_WATCHDOG;
  const step = (event: ServiceWatchdogEvent) => {
    const result = stepServiceWatchdog(config, state, event, clock.now().monoMs);
    state = result.state;
    for (const effect of result.effects) {
      if (effect.type === "notify") link.notifier.send(effect.message);
      else log[effect.level]({ service: "systemd" }, effect.message);
    }
  };
  const statusLine = () => {
    const seq = runner.controller.seq;
    const latch = runner.controller.mon.latch;
    return `${runner.mode}, plan ${seq.plan.planId} v${seq.plan.version}${latch ? `, fault: ${latch.message}` : ""}`;
  };
  bus.on("tick", ({ answered }) => step({ type: "tick", answered }));
  bus.on("changed", () => step({ type: "status", text: statusLine() }));
  bus.on("stopping", () => step({ type: "stopping" }));
  const timer =
    link.watchdogMs === null
      ? null
      : setInterval(() => step({ type: "check" }), link.watchdogMs / CHECKS_PER_WATCHDOG_PERIOD);
  if (link.watchdogMs !== null)
    log.info(
      { watchdogMs: link.watchdogMs, staleAfterMs: config.staleAfterMs },
      "systemd watchdog: pinged only while the loop ticks on time and every module answers",
    );
  return () => {
    step({ type: "stopping" });
    if (timer) clearInterval(timer);
    link.notifier.close();
  };
}
