/**
 * Turns the broker's dropped publishes into one log line per period, naming each login, its client
 * ids and the topic classes it lost, so a flood is seen without becoming a flood of log lines. Its
 * keys are bounded: past `MAX_LOGINS` logins in one period the rest are summed as "other logins".
 */
export const DROP_REPORT_PERIOD_MS = 10_000;
const MAX_LOGINS = 32;
const MAX_CLIENT_IDS = 4;

export interface DroppedSummary {
  [login: string]: { clientIds: string[]; dropped: Record<string, number> };
}

export class DropReport {
  private pending = new Map<string, { clientIds: Set<string>; dropped: Record<string, number> }>();
  private other = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastMs: number | null = null;

  constructor(
    private readonly report: (summary: DroppedSummary, otherLogins: number) => void,
    private readonly nowMs: () => number = () => performance.now(),
    private readonly periodMs = DROP_REPORT_PERIOD_MS,
  ) {}

  count(login: string, clientId: string, cls: string): void {
    let entry = this.pending.get(login);
    if (!entry && this.pending.size < MAX_LOGINS) {
      entry = { clientIds: new Set(), dropped: {} };
      this.pending.set(login, entry);
    }
    if (!entry) this.other++;
    else {
      if (entry.clientIds.size < MAX_CLIENT_IDS) entry.clientIds.add(clientId);
      entry.dropped[cls] = (entry.dropped[cls] ?? 0) + 1;
    }
    const sinceMs = this.lastMs === null ? Number.POSITIVE_INFINITY : this.nowMs() - this.lastMs;
    if (sinceMs >= this.periodMs) return this.flush();
    // What is dropped within the period is said at its end, even if nothing more is dropped.
    this.timer ??= setTimeout(() => this.flush(), this.periodMs - sinceMs).unref();
  }

  /** Says what is pending now (at close). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastMs = this.nowMs();
    if (this.pending.size === 0 && this.other === 0) return;
    const summary: DroppedSummary = {};
    for (const [login, entry] of this.pending)
      summary[login] = { clientIds: [...entry.clientIds], dropped: entry.dropped };
    const other = this.other;
    this.pending = new Map();
    this.other = 0;
    this.report(summary, other);
  }
}
