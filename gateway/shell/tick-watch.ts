/**
 * Says, at most once per report period, when the lamp loop missed ticks of its grid, and why: a bus
 * whose exchanges take longer than a tick (a slow or overloaded module, too many modules on one line)
 * or an event loop that started ticks late (the process was starved). Counting is the metric's job;
 * this turns the counts into a line a technician can act on, without a line per tick.
 */
export interface TickReport {
  readonly missedTicks: number;
  readonly slowestExchangeMs: number;
  readonly latestStartMs: number;
  readonly overMs: number;
  readonly cause: "bus" | "event-loop";
}

export const TICK_REPORT_PERIOD_MS = 60_000;

export class TickWatch {
  private missed = 0;
  private slowestExchangeMs = 0;
  private latestStartMs = 0;
  private periodStartMs: number | null = null;
  private reportedOnce = false;

  constructor(
    private readonly tickMs: number,
    private readonly report: (report: TickReport) => void,
    private readonly periodMs = TICK_REPORT_PERIOD_MS,
  ) {}

  /** One finished tick; `nowMs` on the monotonic clock. */
  record(nowMs: number, tick: { latenessMs: number; exchangeMs: number; missedTicks: number }): void {
    this.periodStartMs ??= nowMs;
    this.missed += tick.missedTicks;
    this.slowestExchangeMs = Math.max(this.slowestExchangeMs, tick.exchangeMs);
    this.latestStartMs = Math.max(this.latestStartMs, tick.latenessMs);
    // The first miss is said at once; later ones once per period.
    const first = this.missed > 0 && this.missed === tick.missedTicks && !this.reportedOnce;
    if (!first && nowMs - this.periodStartMs < this.periodMs) return;
    if (this.missed > 0) {
      this.reportedOnce = true;
      this.report({
        missedTicks: this.missed,
        slowestExchangeMs: this.slowestExchangeMs,
        latestStartMs: this.latestStartMs,
        overMs: nowMs - this.periodStartMs,
        cause: this.slowestExchangeMs >= this.tickMs ? "bus" : "event-loop",
      });
    }
    this.missed = 0;
    this.slowestExchangeMs = 0;
    this.latestStartMs = 0;
    this.periodStartMs = nowMs;
  }
}

/** The report as a log line. */
export function describeTickReport(report: TickReport, tickMs: number): string {
  const over =
    report.overMs < 1000
      ? `${report.missedTicks} ticks of ${tickMs} ms missed just now`
      : `${report.missedTicks} ticks of ${tickMs} ms missed in the last ${(report.overMs / 1000).toFixed(0)} s`;
  return report.cause === "bus"
    ? `${over}: the modules' bus cannot keep the tick rate (slowest exchange ${report.slowestExchangeMs.toFixed(0)} ms): check the module's response time, the baud rate and the number of modules on the line`
    : `${over}: the process started ticks up to ${report.latestStartMs.toFixed(0)} ms late (event loop starved: CPU load, swapping or a flood of work)`;
}
