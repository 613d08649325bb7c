import { execFile } from "node:child_process";
import { ReleaseError } from "./errors.js";
import type { ServiceEvent } from "./health-gate.js";
import type { ServiceManager } from "./service-manager.js";
import { parseShow, SHOW_PROPERTIES, type SystemdObservation, systemdEvents } from "./systemd-events.js";

export const UNIT = "greenwave";

/** How often the unit's state is read during the gate: a crash shows as NRestarts, whenever it was. */
const POLL_MS = 500;
/** `systemctl stop` returns once the unit is stopped: TimeoutStopSec=60 plus SIGKILL and slack. */
const STOP_BOUND_MS = 90_000;
/** Any other systemctl call answers at once; past this, systemd itself is in trouble. */
const CALL_BOUND_MS = 15_000;

function systemctl(args: string[], timeoutMs = CALL_BOUND_MS): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      "systemctl",
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, out: `${stdout}${code !== 0 ? stderr || (error?.message ?? "") : ""}`.trim() });
      },
    );
  });
}

/**
 * The gateway as a systemd service (Type=notify). The start is `systemctl start --no-block`, then the
 * unit is polled (`systemctl show`), rather than a blocking `systemctl restart`: the READY bound is
 * then the gate's own (not TimeoutStartSec, which a unit may set to anything), and crashes during the
 * start — which Restart=always turns into silent restarts — are counted like crashes after READY.
 */
export class SystemdService implements ServiceManager {
  readonly name = "systemd";
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private last: SystemdObservation | null = null;

  constructor(private readonly unit = UNIT) {}

  async shouldGate(): Promise<{ gate: boolean; why: string }> {
    const active = (await systemctl(["is-active", this.unit])).out;
    const enabled = (await systemctl(["is-enabled", this.unit])).out;
    if (active === "active" || active === "activating" || enabled === "enabled")
      return { gate: true, why: `${this.unit}.service is ${active} and ${enabled}` };
    return {
      gate: false,
      why: `${this.unit}.service is ${active || "unknown"} and ${enabled || "not enabled"}: not started (start it with systemctl enable --now ${this.unit}, once /etc/greenwave/intersection.yaml is right)`,
    };
  }

  async stop(): Promise<void> {
    await this.stopPolling();
    const result = await systemctl(["stop", this.unit], STOP_BOUND_MS);
    if (result.code !== 0)
      throw new ReleaseError(
        `systemctl stop ${this.unit} failed (${result.out || `exit ${result.code}`}): nothing was switched; see systemctl status ${this.unit}`,
      );
  }

  async start(observe: (event: ServiceEvent) => void): Promise<void> {
    this.last = await this.read().catch(() => null);
    const result = await systemctl(["start", "--no-block", this.unit]);
    if (result.code !== 0) {
      observe({ kind: "gave-up", why: `systemctl start ${this.unit} failed: ${result.out}` });
      return;
    }
    this.timer = setInterval(() => {
      if (this.polling) return;
      this.polling = this.read()
        .then((now) => {
          const before = this.last ?? now;
          this.last = now;
          for (const event of systemdEvents(before, now)) observe(event);
        })
        .catch((error: unknown) =>
          observe({ kind: "status", text: `systemctl show failed: ${String(error)}` }),
        )
        .finally(() => {
          this.polling = null;
        });
    }, POLL_MS);
  }

  private async read(): Promise<SystemdObservation> {
    const result = await systemctl(["show", "-p", SHOW_PROPERTIES, this.unit]);
    if (result.code !== 0) throw new Error(result.out);
    return parseShow(result.out);
  }

  private async stopPolling(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
  }

  async detach(): Promise<void> {
    await this.stopPolling();
  }

  async undoStop(): Promise<void> {
    await systemctl(["start", "--no-block", this.unit]);
  }

  diagnostics(): string[] {
    return [`journalctl -u ${this.unit} -b --no-pager | tail -50   (why it failed)`];
  }
}
