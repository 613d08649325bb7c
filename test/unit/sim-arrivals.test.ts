import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ModuleProfile } from "../../devices/io-map.js";
import {
  type ArrivalSpec,
  ArrivalSpecError,
  type ArrivalState,
  type InputChange,
  MAX_CHANGES_PER_CALL,
  MAX_RATE_PER_HOUR,
  nextChanges,
  nextEventMs,
  parseArrivalSpec,
  planArrivals,
  PULSE_MS,
  startArrivals,
} from "../../simulators/io-module/arrivals.js";
import { ModuleModel } from "../../simulators/io-module/module-model.js";

const HOUR_MS = 3_600_000;

/** Every change up to `untilMs`, paging past the bound of a call; the number of calls it took. */
function collect(state: ArrivalState, untilMs: number) {
  const changes: InputChange[] = [];
  let calls = 0;
  for (;;) {
    const step = nextChanges(state, untilMs);
    calls++;
    expect(step.changes.length).toBeLessThanOrEqual(MAX_CHANGES_PER_CALL);
    changes.push(...step.changes);
    state = step.state;
    if (step.complete) return { changes, state, calls };
  }
}

const kindArb = fc.constantFrom<ArrivalSpec["kind"]>("vehicle", "pedestrian");
const specsArb = fc
  .uniqueArray(
    fc.record({
      channel: fc.integer({ min: 0, max: 63 }),
      ratePerHour: fc.double({ min: 1, max: MAX_RATE_PER_HOUR, noNaN: true }),
      kind: kindArb,
    }),
    { minLength: 1, maxLength: 6, selector: (s) => s.channel },
  )
  .map((specs) => specs as ArrivalSpec[]);
const seedArb = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

describe("the arrival process", () => {
  it("gives changes in time order, per channel on first, then off and on in turn, each presence at least a pulse long", () => {
    fc.assert(
      fc.property(specsArb, seedArb, fc.integer({ min: 1, max: 2 * HOUR_MS }), (specs, seed, horizon) => {
        const { changes } = collect(planArrivals(specs, seed), horizon);
        const wrong: string[] = [];
        changes.forEach((c, i) => {
          const before = changes[i - 1];
          if (before && c.atMs < before.atMs) wrong.push(`change ${i} before change ${i - 1}`);
          if (!(c.atMs > 0 && c.atMs <= horizon)) wrong.push(`change ${i} at ${c.atMs}`);
        });
        for (const spec of specs) {
          const mine = changes.filter((c) => c.channel === spec.channel);
          mine.forEach((c, i) => {
            const before = mine[i - 1];
            if (c.on !== (i % 2 === 0)) wrong.push(`channel ${spec.channel}: change ${i} on=${c.on}`);
            if (before && !(c.atMs > before.atMs))
              wrong.push(`channel ${spec.channel}: change ${i} not after ${i - 1}`);
            if (!c.on && before && c.atMs - before.atMs < PULSE_MS[spec.kind].min)
              wrong.push(`channel ${spec.channel}: presence ${c.atMs - before.atMs} ms`);
          });
        }
        if (changes.some((c) => !specs.some((s) => s.channel === c.channel)))
          wrong.push("a channel not asked for");
        expect(wrong).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it("is the same for the same seed, however time is cut into calls", () => {
    fc.assert(
      fc.property(
        specsArb,
        seedArb,
        fc.array(fc.integer({ min: 0, max: HOUR_MS }), { minLength: 1, maxLength: 20 }),
        (specs, seed, cuts) => {
          const horizon = HOUR_MS;
          const once = collect(planArrivals(specs, seed), horizon);
          let state = planArrivals(specs, seed);
          const sliced: InputChange[] = [];
          for (const cut of [...cuts].sort((a, b) => a - b).concat(horizon)) {
            const part = collect(state, cut);
            sliced.push(...part.changes);
            state = part.state;
          }
          expect(sliced).toEqual(once.changes);
          expect([state.arrivals, state.presses]).toEqual([once.state.arrivals, once.state.presses]);
          // And again from scratch: nothing of the first run leaked into the second.
          expect(collect(planArrivals(specs, seed), horizon).changes).toEqual(once.changes);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("does not change the state it is given", () => {
    const state = planArrivals([{ channel: 16, ratePerHour: 600, kind: "vehicle" }], 7);
    const copy = structuredClone(state);
    const a = nextChanges(state, HOUR_MS);
    const b = nextChanges(state, HOUR_MS);
    expect(state).toEqual(copy);
    expect(a).toEqual(b);
  });

  it("gives different traffic for different seeds, and keeps a channel's traffic when another is added", () => {
    const one: ArrivalSpec = { channel: 16, ratePerHour: 600, kind: "vehicle" };
    const changes = (specs: ArrivalSpec[], seed: number) =>
      collect(planArrivals(specs, seed), HOUR_MS).changes.filter((c) => c.channel === 16);
    expect(changes([one], 1)).not.toEqual(changes([one], 2));
    expect(changes([one, { channel: 17, ratePerHour: 300, kind: "pedestrian" }], 1)).toEqual(
      changes([one], 1),
    );
  });

  it("arrives at the asked rate in the long run (within 5 standard deviations of a Poisson count)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: MAX_RATE_PER_HOUR, noNaN: true }),
        kindArb,
        seedArb,
        (rate, kind, seed) => {
          // Long enough for some 2,000 arrivals expected.
          const expected = 2_000;
          const horizon = (expected / rate) * HOUR_MS;
          const { state, changes } = collect(
            planArrivals([{ channel: 3, ratePerHour: rate, kind }], seed),
            horizon,
          );
          const counted = kind === "vehicle" ? state.arrivals : state.presses;
          expect(kind === "vehicle" ? state.presses : state.arrivals).toBe(0);
          expect(Math.abs(counted - expected)).toBeLessThanOrEqual(5 * Math.sqrt(expected));
          // Merged pulses give one presence: never more presences than arrivals.
          expect(changes.filter((c) => c.on).length).toBeLessThanOrEqual(counted);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("at a low rate, nearly every arrival is a presence of its own, 0.3-1.2 s (vehicle) or 0.2-0.5 s (button)", () => {
    for (const kind of ["vehicle", "pedestrian"] as const) {
      const { state, changes } = collect(
        planArrivals([{ channel: 0, ratePerHour: 60, kind }], 5),
        100 * HOUR_MS,
      );
      const ons = changes.filter((c) => c.on);
      const count = kind === "vehicle" ? state.arrivals : state.presses;
      expect(ons.length).toBeGreaterThan(0.97 * count);
      const durations = ons.map((on, i) => (changes[2 * i + 1] as InputChange).atMs - on.atMs);
      const single = durations.filter((d) => d <= PULSE_MS[kind].max);
      expect(single.length).toBeGreaterThan(0.97 * durations.length);
      expect(Math.min(...durations)).toBeGreaterThanOrEqual(PULSE_MS[kind].min);
    }
  });

  it("merges overlapping vehicles into one longer presence at a high rate", () => {
    const { state, changes } = collect(
      planArrivals([{ channel: 0, ratePerHour: MAX_RATE_PER_HOUR, kind: "vehicle" }], 3),
      HOUR_MS,
    );
    const ons = changes.filter((c) => c.on).length;
    expect(ons).toBeLessThan(state.arrivals);
    const longest = Math.max(
      ...changes.flatMap((c, i) => (c.on ? [(changes[i + 1]?.atMs ?? c.atMs) - c.atMs] : [])),
    );
    expect(longest).toBeGreaterThan(PULSE_MS.vehicle.max);
  });

  it("gives at most MAX_CHANGES_PER_CALL changes a call, and the rest on the next calls, none lost", () => {
    fc.assert(
      fc.property(specsArb, seedArb, (specs, seed) => {
        const busy = specs.map((s) => ({ ...s, ratePerHour: MAX_RATE_PER_HOUR }));
        const horizon = 2 * HOUR_MS;
        const first = nextChanges(planArrivals(busy, seed), horizon);
        expect(first.changes.length).toBeLessThanOrEqual(MAX_CHANGES_PER_CALL);
        const all = collect(planArrivals(busy, seed), horizon);
        expect(all.changes.slice(0, first.changes.length)).toEqual(first.changes);
        if (all.changes.length > MAX_CHANGES_PER_CALL) {
          expect(first.complete).toBe(false);
          expect(all.calls).toBeGreaterThanOrEqual(Math.ceil(all.changes.length / MAX_CHANGES_PER_CALL));
        }
        // The state after the last page has nothing left before the horizon.
        expect(nextEventMs(all.state)).toBeGreaterThan(horizon);
      }),
      { numRuns: 20 },
    );
  });

  it("refuses bad specs and seeds with a RangeError", () => {
    const v = (channel: number, ratePerHour: number): ArrivalSpec => ({
      channel,
      ratePerHour,
      kind: "vehicle",
    });
    expect(() => planArrivals([v(-1, 60)], 1)).toThrow(RangeError);
    expect(() => planArrivals([v(1.5, 60)], 1)).toThrow(/1.5 is not a whole number/);
    expect(() => planArrivals([v(2, 60), v(2, 30)], 1)).toThrow(/channel 2 is given twice/);
    expect(() => planArrivals([v(2, 0)], 1)).toThrow(/rate 0/);
    expect(() => planArrivals([v(2, Infinity)], 1)).toThrow(RangeError);
    expect(() => planArrivals([v(2, MAX_RATE_PER_HOUR + 1)], 1)).toThrow(RangeError);
    expect(() => planArrivals([v(2, 60)], 0.5)).toThrow(/seed/);
    expect(() => nextChanges(planArrivals([v(2, 60)], 1), NaN)).toThrow(RangeError);
  });
});

describe("the --arrivals SPEC", () => {
  it("reads channel runs closed by @RATE, p for push buttons", () => {
    expect(parseArrivalSpec("16,17@300,20@60p")).toEqual([
      { channel: 16, ratePerHour: 300, kind: "vehicle" },
      { channel: 17, ratePerHour: 300, kind: "vehicle" },
      { channel: 20, ratePerHour: 60, kind: "pedestrian" },
    ]);
    expect(parseArrivalSpec(" 0@0.5 , 31@7200p", 32)).toEqual([
      { channel: 0, ratePerHour: 0.5, kind: "vehicle" },
      { channel: 31, ratePerHour: 7200, kind: "pedestrian" },
    ]);
  });

  it.each([
    ["", /empty/],
    ["16,17", /channels 16,17 at the end have no @RATE/],
    ["16@300,17", /channel 17 at the end has no @RATE/],
    ["16,,17@300", /item 2 is empty/],
    ["16@300,", /item 2 is empty/],
    ["@300", /"@300" has no channel before @/],
    ["x@300", /"x" is not an input channel/],
    ["-1@300", /"-1" is not an input channel/],
    ["1.5@300", /"1.5" is not an input channel/],
    ["16@", /"@" is not a rate/],
    ["16@0", /"@0" is not a rate/],
    ["16@300x", /"@300x" is not a rate/],
    ["16@60P", /"@60P" is not a rate/],
    ["16@-5", /"@-5" is not a rate/],
    ["16@300@2", /"@300@2" is not a rate/],
    ["16@7201", /at most 7200/],
    ["16@300,16@60p", /channel 16 is given twice/],
    ["32@300", /input channel 32 is outside this module's discrete inputs 0–31/],
  ])("refuses %j, saying what is wrong", (spec, message) => {
    let error: unknown;
    try {
      parseArrivalSpec(spec, 32);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArrivalSpecError);
    expect((error as Error).message).toMatch(message);
  });

  it("names a module without discrete inputs", () => {
    expect(() => parseArrivalSpec("0@60", 0)).toThrow(/this module has no discrete inputs/);
  });
});

const profile: ModuleProfile = {
  id: "test-do32-di32",
  outputs: 32,
  firstCoil: 0,
  writeFunction: "fc15",
  feedback: { source: "discrete-inputs", firstInput: 0, count: 32 },
  unitId: 1,
  serial: { baudRate: 9600, dataBits: 8, parity: "none", stopBits: 1 },
  watchdog: null,
};

describe("startArrivals", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("drives the model's detector inputs as the process says, counts, and stops clean", () => {
    vi.useFakeTimers();
    const model = new ModuleModel(profile, Date.now());
    const specs: ArrivalSpec[] = [
      { channel: 20, ratePerHour: 1_200, kind: "vehicle" },
      { channel: 21, ratePerHour: 600, kind: "pedestrian" },
    ];
    const running = startArrivals(model, specs, { seed: 9, monoNow: () => Date.now() });
    expect([...model.detectorInputs]).toEqual([
      [20, false],
      [21, false],
    ]);
    expect(vi.getTimerCount()).toBe(1);
    // The process alone, replayed second by second: the model must show its inputs at each second.
    let state = planArrivals(specs, 9);
    const on = new Map<number, boolean>([
      [20, false],
      [21, false],
    ]);
    for (let s = 1; s <= 600; s++) {
      vi.advanceTimersByTime(1_000);
      const step = collect(state, s * 1_000);
      state = step.state;
      for (const c of step.changes) on.set(c.channel, c.on);
      expect(model.detectorInputs).toEqual(on);
      expect(vi.getTimerCount()).toBe(1);
    }
    expect(running.counters).toEqual({ arrivals: state.arrivals, presses: state.presses });
    expect(state.arrivals).toBeGreaterThan(100);
    expect(state.presses).toBeGreaterThan(40);
    running.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect([...model.detectorInputs]).toEqual([
      [20, false],
      [21, false],
    ]);
  });

  it("refuses channels outside the module's inputs (setDetectorInput would ignore them)", () => {
    const model = new ModuleModel(profile, 0);
    expect(() =>
      startArrivals(model, [{ channel: 32, ratePerHour: 60, kind: "vehicle" }], { seed: 1 }),
    ).toThrow(/outside this module's discrete inputs 0–31/);
  });
});
