import { loadCorridor } from "../gateway/config/load.js";
import { loadSchedule } from "../gateway/config/load-schedule.js";
import { changeInForce, changesBetween } from "../gateway/core/schedule/calendar.js";
import { sinceSync } from "../gateway/core/time/time-reference.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * What a time-of-day schedule costs a gateway, on the example corridor's schedule (Europe/Berlin):
 * the runner's question at each of its ticks (which change is in force, 2 a second), a year of changes
 * (`schedule show --days 365`), and the daily sync point's lookup at each cycle start, with the time
 * zone against the fixed offset it replaced (the ratio is what to compare on a shared machine).
 */
const DAY_MS = 86_400_000;

export function benchSchedule(): BenchResult[] {
  const corridor = loadCorridor("config/corridor.yaml");
  const { schedule } = loadSchedule("config/schedules/main-street.yaml", corridor);
  const start = Date.UTC(2026, 0, 1);
  const inForce: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const at = start + ((i * 7_919_003) % (365 * DAY_MS));
    const t = process.hrtime.bigint();
    changeInForce(schedule, at);
    inForce.push(elapsedMs(t) * 1000);
  }
  const year: number[] = [];
  let changes = 0;
  for (let i = 0; i < 20; i++) {
    const t = process.hrtime.bigint();
    changes = changesBetween(schedule, start, start + 365 * DAY_MS, 10_000).length;
    year.push(elapsedMs(t));
  }
  const zoned = corridor.timeReference;
  const fixed = { dailySyncMs: zoned.dailySyncMs };
  const sync = (ref: typeof zoned) => {
    const samples: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = process.hrtime.bigint();
      sinceSync(ref, start + i * 3_600_017);
      samples.push(elapsedMs(t) * 1000);
    }
    return samples;
  };
  const zonedSync = summarize("sync point lookup, Europe/Berlin", "us", sync(zoned));
  const fixedSync = summarize("sync point lookup, fixed offset", "us", sync(fixed));
  return [
    summarize("schedule: change in force at an instant (a runner tick)", "us", inForce),
    summarize("schedule: a year of changes (schedule show --days 365)", "ms", year, { changes }),
    { ...zonedSync, extra: { vsFixedOffset: zonedSync.median / Math.max(fixedSync.median, 1e-6) } },
    fixedSync,
  ];
}
