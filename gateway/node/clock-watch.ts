import type { ClockSyncReading } from "../shell/clock-sync.js";
import type { GatewayParts } from "./gateway-parts.js";

export type ReadClockSync = () => Promise<ClockSyncReading>;

/** How often the time service is asked; a lost sync is news within a minute. */
export const CLOCK_CHECK_MS = 60_000;

/**
 * The cabinet's clock as its time service sees it. The green wave stands on every cabinet's clock: a
 * gateway whose clock is known unsynchronised says so (status, metrics, a warning and an audit event
 * when it changes) and votes no on a corridor plan change, whose activation instant it could not keep.
 * An unknown state (no time service it can ask) refuses nothing: it is reported, and doctor warns.
 */
export class ClockWatch {
  private current: ClockSyncReading | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(
    private readonly parts: GatewayParts,
    private readonly read: ReadClockSync,
  ) {}

  get reading(): ClockSyncReading | null {
    return this.current;
  }

  /**
   * Why this gateway cannot take part in a timed corridor change now, or null. Only a time service's
   * own word counts: the kernel's flag alone (adjtimex) is set on many hosts whose clock is kept by
   * other means (a VM's host, chrony without rtcsync), so it is reported and warned about, not voted on.
   */
  refusal(): string | null {
    const r = this.current;
    if (r?.state !== "unsynchronised" || !knownByTimeService(r)) return null;
    return `this gateway's clock is not synchronised (${r.source}: ${r.detail}): it could not keep the change's instant; fix its time service (run greenwave doctor)`;
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), CLOCK_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look; a look still running (a hung time service) is not doubled. */
  async check(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      this.update(await this.read());
    } catch (error) {
      this.update({ state: "unknown", source: "none", offsetMs: null, detail: (error as Error).message });
    } finally {
      this.inFlight = false;
    }
  }

  private update(reading: ClockSyncReading): void {
    const { metrics, log, audit, bus } = this.parts;
    const before = this.current?.state ?? null;
    this.current = reading;
    metrics.clockSynchronised.set(
      reading.state === "synchronised" ? 1 : reading.state === "unsynchronised" ? 0 : -1,
    );
    if (reading.offsetMs === null) metrics.clockOffset.reset();
    else metrics.clockOffset.set(reading.offsetMs / 1000);
    if (before === reading.state) return;
    const detail = { source: reading.source, offsetMs: reading.offsetMs, detail: reading.detail };
    if (reading.state === "unsynchronised") {
      log.warn(
        detail,
        knownByTimeService(reading)
          ? "clock NOT synchronised: this gateway votes no on corridor plan changes until it is"
          : "clock not known to be synchronised (only the kernel's flag says so; no time service answered): run greenwave doctor",
      );
      audit.now("clock-unsynchronised", null, detail);
    } else if (reading.state === "synchronised" && before !== null) {
      log.info(detail, "clock synchronised again");
      audit.now("clock-synchronised", null, detail);
    } else if (reading.state === "unknown") {
      log.warn(detail, "clock sync state unknown: no time service answered (greenwave doctor tells more)");
    }
    bus.emit("changed");
  }
}

function knownByTimeService(reading: ClockSyncReading): boolean {
  return reading.source === "timedatectl" || reading.source === "chronyc";
}
