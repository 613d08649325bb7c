import { performance } from "node:perf_hooks";
import {
  type FinalVerdict,
  type GateBounds,
  type GateVerdict,
  HealthGate,
  type ServiceEvent,
} from "./health-gate.js";

/**
 * The service manager, as the activation sees it (a port): systemd on a gateway (systemd-service.ts),
 * or greenwave itself for a trial on a machine without systemd (direct-service.ts). It starts and
 * stops the gateway of the release `current` names, and reports what it sees as health-gate events.
 */
export interface ServiceManager {
  readonly name: "systemd" | "direct";
  /**
   * Whether this activation restarts the service and gates it, and why. systemd: only when the unit
   * is active or enabled (a first install, before the technician's `systemctl enable --now`, only
   * switches); direct: always (that is what it is for).
   */
  shouldGate(): Promise<{ gate: boolean; why: string }>;
  /** Stops the service, bounded; resolves once it is stopped. Idempotent. */
  stop(): Promise<void>;
  /** Starts the service; what it sees goes to `observe` until `stop`. */
  start(observe: (event: ServiceEvent) => void): Promise<void>;
  /**
   * The activation is done with the service. systemd: stop watching (the service runs on); direct:
   * end the trial (stop the gateway it started: nothing would supervise it).
   */
  detach(): Promise<void>;
  /** Starts again, unwatched, what `stop` stopped: an activation refused after the stop. */
  undoStop(): Promise<void>;
  /** Where to look for why it failed (systemd: journalctl; direct: its last output lines). */
  diagnostics(): string[];
}

/**
 * Starts the service and runs the health gate on it until a verdict. An abort (the activation was
 * interrupted: SIGINT, SIGTERM) is a failed verdict: an interrupted trial has not passed.
 */
export async function runHealthGate(
  manager: ServiceManager,
  bounds: GateBounds,
  signal?: AbortSignal,
  now: () => number = () => performance.now(),
): Promise<FinalVerdict> {
  const gate = new HealthGate(bounds, now());
  await manager.start((event) => gate.observe(event, now()));
  return await new Promise((resolve) => {
    const check = () => {
      const verdict: GateVerdict = signal?.aborted
        ? { outcome: "failed", why: `the activation was interrupted (${String(signal.reason)})`, crashes: 0 }
        : gate.verdict(now());
      if (verdict.outcome === "pending") return;
      clearInterval(timer);
      resolve(verdict);
    };
    // 50 ms: the verdict is a comparison of a few numbers; the bounds are seconds.
    const timer = setInterval(check, 50);
    check();
  });
}
