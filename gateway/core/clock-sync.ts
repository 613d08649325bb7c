/**
 * Whether this machine's clock is synchronised, read from what the time daemons print. Pure: the
 * commands are run by gateway/shell/clock-sync.ts; here their output is parsed and judged.
 *
 * The formats are the tools' own (their sources, not guesses):
 * - `timedatectl show -p NTPSynchronized -p NTP`: `KEY=yes|no` lines. NTPSynchronized is timedated's
 *   reading of the kernel (adjtimex: maxerror below 16 s), whichever daemon disciplines the clock.
 * - `timedatectl timesync-status`: systemd-timesyncd's last NTP sample as a vertical table
 *   (`       Offset: -5.086ms`), spans in systemd's format (`1min 3.5s`, `39us`); with no sample yet it
 *   prints `Packet count: 0` and no offset.
 * - `chronyc -c tracking`: one CSV line of 14 fields; field 5 is "System time", the correction
 *   chronyd is still applying (positive: the clock is slow), the last is the leap status, where
 *   "Not synchronised" means chronyd has no usable source.
 * - `adjtimex --print` (Debian package `adjtimex`): the kernel's `struct timex`, `key: value` lines.
 */

export type ClockSyncState = "synchronised" | "unsynchronised" | "unknown";
export type ClockSyncSource = "timedatectl" | "chronyc" | "adjtimex" | "none";

export interface ClockSyncReading {
  readonly state: ClockSyncState;
  readonly source: ClockSyncSource;
  /**
   * The estimated offset of the reference (NTP) time from this clock, ms: positive when this clock is
   * behind (slow), the sign chronyc and timedatectl print. Null when the source gives none.
   */
  readonly offsetMs: number | null;
  /** One line for a person: which daemon, which server, what it said. */
  readonly detail: string;
}

/** The kernel's limit of its maximum error estimate: at or past it, the clock is unsynchronised (kernel NTP_PHASE_LIMIT). */
export const KERNEL_MAXERROR_LIMIT_US = 16_000_000;
/** `struct timex` status bit: the kernel clock is not synchronised. */
export const STA_UNSYNC = 0x40;

export interface TimedatectlShow {
  /** timedated's NTPSynchronized: the kernel says the clock is synchronised. */
  readonly ntpSynchronized: boolean;
  /** timedated's NTP: a time-sync service is enabled (null when not printed). */
  readonly ntp: boolean | null;
}

export function parseTimedatectlShow(stdout: string): TimedatectlShow | null {
  const values = keyValues(stdout, "=");
  const synced = yesNo(values.get("NTPSynchronized"));
  if (synced === null) return null;
  return { ntpSynchronized: synced, ntp: yesNo(values.get("NTP")) };
}

export interface TimesyncStatus {
  /** "80.249.145.122 (0.debian.pool.ntp.org)", or null. */
  readonly server: string | null;
  readonly packetCount: number | null;
  /** The last sample's offset (positive: this clock is behind), or null before the first sample. */
  readonly offsetMs: number | null;
}

export function parseTimesyncStatus(stdout: string): TimesyncStatus | null {
  const values = keyValues(stdout, ":");
  if (!values.has("Packet count") && !values.has("Server")) return null;
  const count = values.get("Packet count");
  const offset = values.get("Offset");
  return {
    server: values.get("Server") ?? null,
    packetCount: count !== undefined && /^\d+$/.test(count) ? Number(count) : null,
    offsetMs: offset === undefined ? null : parseSignedSpanMs(offset),
  };
}

const SPAN_UNITS_MS: Readonly<Record<string, number>> = {
  y: 31_557_600_000,
  month: 2_629_800_000,
  w: 604_800_000,
  d: 86_400_000,
  h: 3_600_000,
  min: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
};

/** A systemd time span with an optional sign ("+1.234ms", "-1min 3.5s", "0"), in ms; null if it is not one. */
export function parseSignedSpanMs(text: string): number | null {
  const trimmed = text.trim();
  const sign = trimmed.startsWith("-") ? -1 : 1;
  const body = trimmed.replace(/^[+-]/, "");
  if (body === "0") return 0;
  const parts = body.split(/\s+/);
  let total = 0;
  for (const part of parts) {
    const match = /^(\d+(?:\.\d+)?)(month|min|ms|us|µs|y|w|d|h|s)$/.exec(part);
    if (!match) return null;
    total += Number(match[1]) * (SPAN_UNITS_MS[match[2] as string] as number);
  }
  return parts.length > 0 ? sign * total : null;
}

export interface ChronyTracking {
  readonly referenceId: string;
  readonly name: string;
  readonly stratum: number;
  /** "System time": the correction chronyd is applying, s (positive: the clock is slow). */
  readonly systemTimeS: number;
  /** "Normal", "Insert second", "Delete second", "Not synchronised" or "Invalid". */
  readonly leapStatus: string;
}

const CHRONY_TRACKING_FIELDS = 14;

export function parseChronyTracking(stdout: string): ChronyTracking | null {
  const line = stdout.split("\n").find((l) => l.trim() !== "");
  const fields = line?.trim().split(",");
  if (!fields || fields.length !== CHRONY_TRACKING_FIELDS) return null;
  const stratum = Number(fields[2]);
  const systemTimeS = Number(fields[4]);
  if (!/^[0-9A-F]{8}$/i.test(fields[0] ?? "") || !Number.isInteger(stratum) || !Number.isFinite(systemTimeS))
    return null;
  return {
    referenceId: fields[0] as string,
    name: fields[1] as string,
    stratum,
    systemTimeS,
    leapStatus: fields[CHRONY_TRACKING_FIELDS - 1] as string,
  };
}

export interface KernelTimex {
  readonly status: number;
  readonly maxerrorUs: number;
  readonly esterrorUs: number;
}

export function parseAdjtimexPrint(stdout: string): KernelTimex | null {
  const values = keyValues(stdout, ":");
  const status = Number(values.get("status"));
  const maxerrorUs = Number(values.get("maxerror"));
  const esterrorUs = Number(values.get("esterror"));
  if (![status, maxerrorUs, esterrorUs].every(Number.isInteger)) return null;
  return { status, maxerrorUs, esterrorUs };
}

/** timesyncd's state as timedatectl prints it; `timesync` is null when timesyncd did not answer. */
export function fromTimedatectl(show: TimedatectlShow, timesync: TimesyncStatus | null): ClockSyncReading {
  const sample = timesync && (timesync.packetCount ?? 0) > 0 ? timesync : null;
  const offsetMs = sample?.offsetMs ?? null;
  const service = show.ntp === false ? "no time-sync service is enabled (NTP=no)" : null;
  const server = sample?.server ? `server ${sample.server}` : timesync ? "no NTP answer yet" : null;
  const parts = [
    `timedatectl: NTPSynchronized=${show.ntpSynchronized ? "yes" : "no"}`,
    service,
    server,
    offsetMs === null ? null : `offset ${formatOffsetMs(offsetMs)}`,
  ];
  return {
    state: show.ntpSynchronized ? "synchronised" : "unsynchronised",
    source: "timedatectl",
    offsetMs,
    detail: parts.filter((p) => p !== null).join(", "),
  };
}

export function fromChrony(tracking: ChronyTracking): ClockSyncReading {
  const synchronised = tracking.leapStatus !== "Not synchronised" && tracking.leapStatus !== "Invalid";
  const reference = tracking.name ? `${tracking.referenceId} (${tracking.name})` : tracking.referenceId;
  const offsetMs = tracking.systemTimeS * 1000;
  return {
    state: synchronised ? "synchronised" : "unsynchronised",
    source: "chronyc",
    offsetMs: synchronised ? offsetMs : null,
    detail: synchronised
      ? `chrony: reference ${reference}, stratum ${tracking.stratum}, offset ${formatOffsetMs(offsetMs)}, leap status ${tracking.leapStatus}`
      : `chrony: leap status ${tracking.leapStatus} (no usable time source)`,
  };
}

/**
 * The kernel's own view, as systemd's timedated judges it since v245: synchronised while the maximum
 * error estimate is below 16 s. STA_UNSYNC alone is not trusted: chrony keeps it set on purpose
 * (without `rtcsync`) so that the kernel leaves the RTC alone, while it disciplines the clock.
 */
export function fromKernel(timex: KernelTimex): ClockSyncReading {
  const synchronised = timex.maxerrorUs < KERNEL_MAXERROR_LIMIT_US;
  const flag = timex.status & STA_UNSYNC ? "STA_UNSYNC set" : "STA_UNSYNC clear";
  return {
    state: synchronised ? "synchronised" : "unsynchronised",
    source: "adjtimex",
    offsetMs: null,
    detail: `kernel (adjtimex): maximum error ${formatOffsetMs(timex.maxerrorUs / 1000, false)} (limit 16 s), estimated error ${formatOffsetMs(timex.esterrorUs / 1000, false)}, status 0x${timex.status.toString(16)} (${flag})`,
  };
}

/** "+1.234 ms", "-2.5 s": what a technician compares with the daemon's own output. */
export function formatOffsetMs(ms: number, signed = true): string {
  const sign = signed ? (ms < 0 ? "-" : "+") : "";
  const magnitude = Math.abs(ms);
  if (magnitude >= 1000) return `${sign}${(magnitude / 1000).toFixed(3)} s`;
  return `${sign}${magnitude.toFixed(3)} ms`;
}

/** `key<sep>value` lines, keys and values trimmed; the first occurrence of a key wins. */
function keyValues(text: string, separator: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf(separator);
    if (at <= 0) continue;
    const key = line.slice(0, at).trim();
    if (key !== "" && !values.has(key)) values.set(key, line.slice(at + 1).trim());
  }
  return values;
}

function yesNo(value: string | undefined): boolean | null {
  if (value === "yes") return true;
  if (value === "no") return false;
  return null;
}
