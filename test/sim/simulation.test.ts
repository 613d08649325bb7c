import { describe, expect, it } from "vitest";
import { MUTATIONS, type Mutation } from "../../simulators/corridor/mutations.js";
import { type SimulationOptions, type SimulationResult, simulate } from "../../simulators/corridor/world.js";

/** The seeds every `npm test` runs (docs/simulation.md); a long campaign: `npm run simtest -- --seeds 100000`. */
const CI_SEEDS = 500;
/** Mutations of a gateway's schedule runner: the schedule invariant must be what catches them. */
const SCHEDULE_MUTATIONS: readonly Mutation[] = ["switch-at-change-instant", "stale-schedule-version"];

function firstViolation(
  options: Omit<SimulationOptions, "seed">,
  seeds = CI_SEEDS,
): { result: SimulationResult | null; seeds: number } {
  for (let seed = 1; seed <= seeds; seed++) {
    const result = simulate({ seed, ...options });
    if (result.violation) return { result, seeds: seed };
  }
  return { result: null, seeds };
}

function explain(result: SimulationResult): string {
  return [
    `seed ${result.seed}: ${result.violation?.message}`,
    ...result.trace.slice(-40),
    `replay: npm run simtest -- --seed ${result.seed}`,
  ].join("\n");
}

describe("deterministic simulation of the corridor under faults", () => {
  it(`keeps every invariant over ${CI_SEEDS} seeds`, { timeout: 600_000 }, () => {
    let pushes = 0;
    let committed = 0;
    let crashes = 0;
    let stops = 0;
    let floods = 0;
    let floodMessages = 0;
    let dropped = 0;
    let schedulePushes = 0;
    let schedulesCommitted = 0;
    let scheduleChecks = 0;
    let scheduledEntries = 0;
    let forgeries = 0;
    let cancels = 0;
    let cancelsCommitted = 0;
    for (let seed = 1; seed <= CI_SEEDS; seed++) {
      const result = simulate({ seed });
      if (result.violation) expect.fail(explain(result));
      pushes += result.stats.pushes;
      committed += result.stats.committed;
      crashes += result.stats.gatewayCrashes + result.stats.coordinatorCrashes;
      stops += result.stats.cleanStops;
      floods += result.stats.floods;
      floodMessages += result.stats.floodMessages;
      dropped += result.stats.messagesDropped;
      schedulePushes += result.stats.schedulePushes;
      schedulesCommitted += result.stats.schedulesCommitted;
      scheduleChecks += result.stats.scheduleCycleChecks;
      scheduledEntries += result.stats.scheduledEntries;
      forgeries += result.stats.forgeries;
      cancels += result.stats.cancels;
      cancelsCommitted += result.stats.cancelsCommitted;
    }
    // The runs really exercised the protocol: many changes, both outcomes, many crashes, clean stops,
    // and floods whose excess the rate limit dropped.
    expect(committed).toBeGreaterThan(CI_SEEDS);
    expect(pushes - committed).toBeGreaterThan(CI_SEEDS);
    expect(crashes).toBeGreaterThan(CI_SEEDS);
    expect(stops).toBeGreaterThan(CI_SEEDS);
    expect(floods).toBeGreaterThan(CI_SEEDS);
    expect(dropped).toBeGreaterThan(floodMessages / 2);
    // A Byzantine member (half the runs) forged decisions, answers, records and tokens, many of them
    // at gateways in doubt: atomicity and no split held all the same.
    expect(forgeries).toBeGreaterThan(10 * CI_SEEDS);
    // Cancels (runs without schedules) took waiting changes back, under the same faults.
    expect(cancelsCommitted).toBeGreaterThan(CI_SEEDS / 5);
    // Schedules raced plan pushes, and the schedule invariant had in-step cycles and scheduled changes
    // entered from their boundary to check.
    expect(schedulesCommitted).toBeGreaterThan(CI_SEEDS / 4);
    expect(scheduleChecks).toBeGreaterThan(CI_SEEDS / 4);
    expect(scheduledEntries).toBeGreaterThan(CI_SEEDS / 4);
    console.log(
      `${CI_SEEDS} seeds: ${pushes} plan pushes, ${committed} committed, ${crashes} crashes, ` +
        `${stops} clean stops, ${floods} floods of ${floodMessages} messages (${dropped} dropped), ` +
        `${forgeries} forgeries, ${cancels} cancels (${cancelsCommitted} committed), ` +
        `${schedulePushes} schedule pushes (${schedulesCommitted} committed), ${scheduleChecks} in-step cycles ` +
        `and ${scheduledEntries} scheduled entries checked against the schedule`,
    );
  });

  it("is a pure function of its seed: the same seed replays the same run", () => {
    const a = simulate({ seed: 4242 });
    const b = simulate({ seed: 4242 });
    const c = simulate({ seed: 4243 });
    expect(b.traceDigest).toBe(a.traceDigest);
    expect(b.stats).toEqual(a.stats);
    expect(b.trace).toEqual(a.trace);
    expect(c.traceDigest).not.toBe(a.traceDigest);
  });

  describe("catches each protocol mutation within the CI seeds", () => {
    for (const mutation of Object.keys(MUTATIONS) as Mutation[]) {
      it(`${mutation}: ${MUTATIONS[mutation]}`, { timeout: 600_000 }, () => {
        const { result, seeds } = firstViolation({ mutation });
        expect(result, `not caught in ${seeds} seeds`).not.toBeNull();
        // A schedule mutation must be what the schedule invariant catches, not some other failure.
        if (SCHEDULE_MUTATIONS.includes(mutation))
          expect(result?.violation?.invariant, result ? explain(result) : "").toBe("schedule-agreement");
        console.log(`${mutation}: caught at seed ${result?.seed} — ${result?.violation?.message}`);
      });
    }
  });
});
