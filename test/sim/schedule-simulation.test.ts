import { describe, expect, it } from "vitest";
import { actionLabel, changesBetween } from "../../gateway/core/schedule/calendar.js";
import { offsetAt } from "../../gateway/core/time/zone.js";
import { loadSimCorridor } from "../../simulators/corridor/corridor-data.js";
import { SeededRandom } from "../../simulators/corridor/random.js";
import {
  chooseRunStart,
  offsetTransitions,
  randomScheduleFile,
  SIM_ZONES,
} from "../../simulators/corridor/sim-schedules.js";
import { type SimulationResult, simulate } from "../../simulators/corridor/world.js";

const MINUTE_MS = 60_000;
/** A run: 4 minutes of faults and pushes, 4 healed. */
const RUN_MS = 8 * MINUTE_MS;

function explain(result: SimulationResult): string {
  return [
    `seed ${result.seed}: ${result.violation?.message}`,
    ...result.trace.slice(-40),
    `replay: npm run simtest -- --seed ${result.seed}`,
  ].join("\n");
}

describe("the simulation's schedules", () => {
  it("finds both daylight-saving transitions of 2026 in each zone, one hemisphere apart", () => {
    const iso = (zone: string) => offsetTransitions(zone).map((t) => new Date(t).toISOString());
    expect(iso("Europe/Berlin")).toEqual(["2026-03-29T01:00:00.000Z", "2026-10-25T01:00:00.000Z"]);
    expect(iso("Australia/Sydney")).toEqual(["2026-04-04T16:00:00.000Z", "2026-10-03T16:00:00.000Z"]);
    expect(iso("America/Chicago")).toEqual(["2026-03-08T08:00:00.000Z", "2026-11-01T07:00:00.000Z"]);
    for (const zone of SIM_ZONES)
      for (const t of offsetTransitions(zone)) expect(offsetAt(zone, t)).not.toBe(offsetAt(zone, t - 1000));
  });

  it("makes schedule files production's loader accepts, with changes inside the run", () => {
    const corridor = loadSimCorridor("config/corridor.yaml", "Europe/Berlin");
    const planIds = [...corridor.plans.keys()];
    let withChangeInRun = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const r = new SeededRandom(seed);
      const zone = r.pick(SIM_ZONES);
      const start = chooseRunStart(r, zone, { dailySyncMs: 2 * 3_600_000, timeZone: zone });
      // Converted through `scheduleFromRaw` (schema and calendar checks): it throws on any problem.
      const { schedule } = randomScheduleFile(r, {
        id: "sim-week",
        version: seed,
        corridor: corridor.id,
        zone,
        planIds,
        fromWallMs: start + 10_000,
        toWallMs: start + RUN_MS - MINUTE_MS,
      });
      expect(schedule.timeZone).toBe(zone);
      // The first day plan, a weekly one, changes the plan at least once a day it runs.
      const weekly = new Set(schedule.dayPlans.dp1?.map((e) => actionLabel(e.action)));
      expect(weekly.size).toBeGreaterThanOrEqual(2);
      if (changesBetween(schedule, start, start + RUN_MS, 1).length > 0) withChangeInRun++;
    }
    // Most schedules change the plan while the run lasts (the rest: the event in force is repeated).
    expect(withChangeInRun).toBeGreaterThan(200);
  });
});

describe("the corridor simulation across daylight-saving transitions", () => {
  for (const zone of SIM_ZONES)
    it(`keeps every invariant with schedules in ${zone}, a few minutes before each transition`, () => {
      let pushes = 0;
      for (const [i, transition] of offsetTransitions(zone).entries())
        for (const lead of [2, 5]) {
          const seed = 100 + 10 * i + lead;
          const result = simulate({
            seed,
            timeZone: zone,
            startWallMs: transition - lead * MINUTE_MS,
            schedules: true,
          });
          if (result.violation) expect.fail(explain(result));
          pushes += result.stats.schedulePushes;
        }
      expect(pushes).toBeGreaterThan(0);
    });
});
