/**
 * Turns counted drops into a log line at most once per period, naming what was dropped and from whom:
 * a flood must be visible without becoming a flood of log lines itself. Its keys are bounded.
 */
export const DROP_REPORT_PERIOD_MS = 10_000;
const MAX_KEYS = 64;

export class DropWatch {
  private counts = new Map<string, number>();
  private other = 0;
  private lastReportMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly report: (summary: Record<string, number>) => void,
    private readonly nowMs: () => number,
    private readonly periodMs = DROP_REPORT_PERIOD_MS,
  ) {}

  count(key: string): void {
    if (this.counts.has(key) || this.counts.size < MAX_KEYS)
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    else this.other++;
    const sinceMs = this.lastReportMs === null ? Number.POSITIVE_INFINITY : this.nowMs() - this.lastReportMs;
    if (sinceMs >= this.periodMs) return this.flush();
    // What comes within the period is said at its end, even if nothing more is dropped.
    this.timer ??= setTimeout(() => this.flush(), this.periodMs - sinceMs).unref();
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastReportMs = this.nowMs();
    if (this.counts.size === 0 && this.other === 0) return;
    const summary = Object.fromEntries(this.counts);
    if (this.other > 0) summary.other = this.other;
    this.counts = new Map();
    this.other = 0;
    this.report(summary);
  }
}
