import type { ServiceEvent } from "./health-gate.js";

/**
 * What `systemctl show -p ActiveState,SubState,NRestarts,Result,ExecMainStatus,StatusText` says about
 * the unit, and the health-gate events between two such readings (pure: the systemd manager polls,
 * this decides). Under Type=notify, ActiveState becomes `active` only once the main process has sent
 * READY=1; NRestarts counts the restarts Restart=always made, so a crash between two polls is counted.
 */
export interface SystemdObservation {
  readonly activeState: string;
  readonly subState: string;
  readonly nRestarts: number;
  readonly result: string;
  readonly execMainStatus: number | null;
  readonly statusText: string;
}

export const SHOW_PROPERTIES = "ActiveState,SubState,NRestarts,Result,ExecMainStatus,StatusText";

export function parseShow(text: string): SystemdObservation {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) values.set(line.slice(0, at), line.slice(at + 1).trimEnd());
  }
  const number = (key: string) => {
    const value = Number(values.get(key));
    return values.get(key) !== undefined && values.get(key) !== "" && Number.isFinite(value) ? value : null;
  };
  return {
    activeState: values.get("ActiveState") ?? "unknown",
    subState: values.get("SubState") ?? "unknown",
    nRestarts: number("NRestarts") ?? 0,
    result: values.get("Result") ?? "unknown",
    execMainStatus: number("ExecMainStatus"),
    statusText: values.get("StatusText") ?? "",
  };
}

/** How the main process ended, in words (systemd.exec(5) Result= values). */
export function describeExit(observation: SystemdObservation): string {
  const status = observation.execMainStatus;
  switch (observation.result) {
    case "exit-code":
      return `exit status ${status ?? "?"}`;
    case "signal":
    case "core-dump":
      return `killed by signal ${status ?? "?"}${observation.result === "core-dump" ? " (core dumped)" : ""}`;
    case "watchdog":
      return "killed by its watchdog (no WATCHDOG=1 within WatchdogSec: a stalled loop or modules not answering)";
    case "timeout":
      return "timed out (TimeoutStartSec or TimeoutStopSec)";
    default:
      return `Result=${observation.result}${status !== null ? `, status ${status}` : ""}`;
  }
}

const RUNNING_STATES = new Set(["activating", "active", "reloading", "deactivating"]);

/** The events between two readings (`before`: the reading taken after the stop that preceded the start). */
export function systemdEvents(before: SystemdObservation, after: SystemdObservation): ServiceEvent[] {
  const events: ServiceEvent[] = [];
  // A manual start may reset NRestarts: a reading lower than the last is a new count from zero.
  const base = after.nRestarts < before.nRestarts ? 0 : before.nRestarts;
  const restarts = after.nRestarts - base;
  for (let i = 0; i < restarts; i++) events.push({ kind: "exited", how: describeExit(after) });
  if (after.statusText && after.statusText !== before.statusText)
    events.push({ kind: "status", text: after.statusText });
  if (after.activeState === "active" && (before.activeState !== "active" || restarts > 0))
    events.push({ kind: "ready" });
  if (after.activeState === "failed")
    events.push({
      kind: "gave-up",
      why: `systemd gave up on it: the unit failed (${describeExit(after)})`,
    });
  else if (after.activeState === "inactive" && RUNNING_STATES.has(before.activeState))
    events.push({
      kind: "gave-up",
      why: "the unit became inactive (stopped by someone else, or Restart= did not apply)",
    });
  return events;
}
