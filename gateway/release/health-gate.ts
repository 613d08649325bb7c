/**
 * The health gate, as a pure state machine (the functional core of an activation): it is fed what the
 * service manager saw — READY, an exit it did not ask for, a status line, or that it gave up — with
 * the monotonic time, and says at any instant whether the release passed, failed, or is still on
 * trial. The managers (systemd, direct) only translate what they see into these events.
 *
 * A release passes when it has reported READY within `readyWithinMs` of its start, then stayed up
 * through `settleMs` with fewer than `maxCrashes` exits (counted from its start, READY or not: a
 * crash loop before READY is the same failure). If it is down (restarting) when the settle window
 * ends, it has `readyWithinMs` from that crash to be READY again.
 */

export interface GateBounds {
  readonly readyWithinMs: number;
  readonly settleMs: number;
  readonly maxCrashes: number;
}

export const DEFAULT_BOUNDS: GateBounds = { readyWithinMs: 120_000, settleMs: 60_000, maxCrashes: 3 };

export type ServiceEvent =
  | { readonly kind: "ready" }
  /** The main process ended without being asked to; `how`: "exit status 1", "killed by SIGSEGV". */
  | { readonly kind: "exited"; readonly how: string }
  /** A `STATUS=` line (or systemd's StatusText): the last one is quoted when the release fails. */
  | { readonly kind: "status"; readonly text: string }
  /** The service manager stopped trying (systemd: the unit is failed or inactive). */
  | { readonly kind: "gave-up"; readonly why: string };

export type GateVerdict =
  | { readonly outcome: "pending" }
  | { readonly outcome: "passed"; readonly readyAfterMs: number; readonly crashes: number }
  | { readonly outcome: "failed"; readonly why: string; readonly crashes: number };

/** A verdict that ends the trial. */
export type FinalVerdict = Exclude<GateVerdict, { readonly outcome: "pending" }>;

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

export class HealthGate {
  private firstReadyAtMs: number | null = null;
  private up = false;
  private crashes = 0;
  private lastExit: { atMs: number; how: string } | null = null;
  private lastStatus: string | null = null;
  private gaveUp: string | null = null;

  constructor(
    private readonly bounds: GateBounds,
    private readonly startedAtMs: number,
  ) {}

  observe(event: ServiceEvent, atMs: number): void {
    switch (event.kind) {
      case "ready":
        this.up = true;
        this.firstReadyAtMs ??= atMs;
        return;
      case "exited":
        this.up = false;
        this.crashes++;
        this.lastExit = { atMs, how: event.how };
        return;
      case "status":
        this.lastStatus = event.text;
        return;
      case "gave-up":
        this.up = false;
        this.gaveUp ??= event.why;
        return;
    }
  }

  verdict(nowMs: number): GateVerdict {
    const crashes = this.crashes;
    const failed = (why: string): GateVerdict => ({ outcome: "failed", why: why + this.context(), crashes });
    if (this.gaveUp !== null) return failed(this.gaveUp);
    if (crashes >= this.bounds.maxCrashes)
      return failed(
        `it crashed ${crashes} times within ${seconds((this.lastExit?.atMs ?? nowMs) - this.startedAtMs)} of its start (at most ${this.bounds.maxCrashes - 1} allowed)`,
      );
    if (this.firstReadyAtMs === null) {
      if (nowMs - this.startedAtMs < this.bounds.readyWithinMs) return { outcome: "pending" };
      return failed(`it did not report READY within ${seconds(this.bounds.readyWithinMs)} of its start`);
    }
    if (nowMs - this.firstReadyAtMs < this.bounds.settleMs) return { outcome: "pending" };
    if (this.up) return { outcome: "passed", readyAfterMs: this.firstReadyAtMs - this.startedAtMs, crashes };
    const since = this.lastExit?.atMs ?? this.firstReadyAtMs;
    if (nowMs - since < this.bounds.readyWithinMs) return { outcome: "pending" };
    return failed(
      `it crashed after reporting READY and did not report READY again within ${seconds(this.bounds.readyWithinMs)}`,
    );
  }

  /** What else is known, for the failure message: crashes so far, the last exit, the last status. */
  private context(): string {
    const parts: string[] = [];
    if (this.crashes > 0 && this.lastExit)
      parts.push(`${this.crashes} crash${this.crashes === 1 ? "" : "es"}, the last: ${this.lastExit.how}`);
    if (this.lastStatus) parts.push(`its last status: "${this.lastStatus}"`);
    return parts.length > 0 ? ` (${parts.join("; ")})` : "";
  }
}
