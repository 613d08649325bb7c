import { summarize } from "./stats.js";

/** One reading of the gateway process, taken every interval. */
export interface Sample {
  /** Since the gateway was spawned. */
  readonly tMs: number;
  readonly rssBytes: number;
  readonly writeBytes: number;
  readonly cancelledWriteBytes: number;
  readonly wchar: number;
  /** Bytes the gateway wrote to stdout and stderr (its log: journald's input under systemd). */
  readonly logBytes: number;
  /** Sizes of the files in the gateway's store directory (gateway.db, -wal, -shm, latch.rec). */
  readonly files: Record<string, number>;
}

export interface Figures {
  readonly rssAt1MinBytes: number | null;
  readonly rssEndBytes: number | null;
  readonly rssMaxBytes: number | null;
  /** write_bytes over the whole run, start-up included. */
  readonly writeBytesTotal: number | null;
  /** The steady state: from the first sample at or after the warm-up to the last one. */
  readonly steady: {
    readonly fromMs: number;
    readonly toMs: number;
    readonly writeBytes: number;
    readonly cancelledWriteBytes: number;
    /** write_bytes per day, extrapolated from the steady state (MB = 10^6 bytes). */
    readonly writeMBPerDay: number;
    readonly wcharMBPerDay: number;
    readonly logMBPerDay: number;
    /**
     * write_bytes per day over the steady intervals in which the gateway wrote no audit event: what it
     * writes when nothing happens (null when every interval had an event).
     */
    readonly quietMBPerDay: number | null;
    /** Audit events the gateway wrote during the steady state, and write_bytes per event. */
    readonly events: number;
    readonly writeBytesPerEvent: number | null;
    /** Per-interval write_bytes rate over the steady state, in MB/day. */
    readonly intervalMBPerDay: { median: number; p99: number; max: number; intervals: number };
  } | null;
}

const DAY_S = 86_400;
const perDayMB = (bytes: number, ms: number) => (bytes / (ms / 1000)) * DAY_S * 1e-6;

/**
 * The figures of one run (pure: the samples in, the numbers out). `eventTimesMs`: when the gateway
 * wrote its audit events, since its spawn (from its store).
 */
export function footprintFigures(
  samples: readonly Sample[],
  warmupMs: number,
  eventTimesMs: readonly number[],
): Figures {
  const last = samples.at(-1);
  const atOneMinute = samples.find((s) => s.tMs >= 60_000);
  const from = samples.find((s) => s.tMs >= warmupMs);
  const steadySamples = from ? samples.filter((s) => s.tMs >= from.tMs) : [];
  const steady =
    from && last && steadySamples.length >= 2
      ? (() => {
          const ms = last.tMs - from.tMs;
          const rates = steadySamples
            .slice(1)
            .map((s, i) =>
              perDayMB(
                s.writeBytes - (steadySamples[i] as Sample).writeBytes,
                s.tMs - (steadySamples[i] as Sample).tMs,
              ),
            );
          const r = summarize("interval write rate", "MB/day", rates);
          const events = eventTimesMs.filter((t) => t > from.tMs && t <= last.tMs).length;
          let quietBytes = 0;
          let quietMs = 0;
          steadySamples.slice(1).forEach((s, i) => {
            const previous = steadySamples[i] as Sample;
            if (eventTimesMs.some((t) => t > previous.tMs && t <= s.tMs)) return;
            quietBytes += s.writeBytes - previous.writeBytes;
            quietMs += s.tMs - previous.tMs;
          });
          const writeBytes = last.writeBytes - from.writeBytes;
          return {
            fromMs: from.tMs,
            toMs: last.tMs,
            writeBytes,
            cancelledWriteBytes: last.cancelledWriteBytes - from.cancelledWriteBytes,
            writeMBPerDay: perDayMB(last.writeBytes - from.writeBytes, ms),
            wcharMBPerDay: perDayMB(last.wchar - from.wchar, ms),
            logMBPerDay: perDayMB(last.logBytes - from.logBytes, ms),
            quietMBPerDay: quietMs > 0 ? perDayMB(quietBytes, quietMs) : null,
            events,
            writeBytesPerEvent: events > 0 ? writeBytes / events : null,
            intervalMBPerDay: { median: r.median, p99: r.p99, max: r.max, intervals: r.samples },
          };
        })()
      : null;
  return {
    rssAt1MinBytes: atOneMinute?.rssBytes ?? null,
    rssEndBytes: last?.rssBytes ?? null,
    rssMaxBytes: samples.length ? Math.max(...samples.map((s) => s.rssBytes)) : null,
    writeBytesTotal: last?.writeBytes ?? null,
    steady,
  };
}
