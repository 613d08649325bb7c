import { describe, expect, it } from "vitest";
import { lateness } from "../../gateway/core/correction.js";
import type {
  Aspect,
  Detector,
  Intersection,
  IntersectionPlan,
  SignalGroup,
  StageActuation,
} from "../../gateway/core/model.js";
import { compilePlan, type StageSpec } from "../../gateway/core/plan.js";
import type { SignalEvent } from "../../gateway/core/sequencer.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";
import { VirtualIntersection } from "../support/drive.js";

/**
 * Actuated-coordinated operation on concrete intersections, tick by tick (100 ms, on the plan's grid):
 * an intersection like config/intersections/elm.yaml (M and its crossing PS in the coordinated stage
 * "main", S and its crossing PM in the actuated stage "side"), written out here so that the examples do
 * not move with the example configuration. Times are in ms after the first cycle's start, which falls
 * on an ideal cycle start (in step from the first cycle).
 */

const M = 0;
const S = 1;
const PS = 2;
const PM = 3;

const GROUPS: SignalGroup[] = [
  {
    id: "M",
    kind: "vehicle",
    minGoMs: 10_000,
    clearanceMs: 4000,
    redClearanceMs: 2000,
    scheduledFlash: "yellow",
  },
  { id: "S", kind: "vehicle", minGoMs: 7000, clearanceMs: 3500, redClearanceMs: 2000, scheduledFlash: "red" },
  {
    id: "PS",
    kind: "pedestrian",
    minGoMs: 7000,
    clearanceMs: 10_000,
    redClearanceMs: 0,
    scheduledFlash: "red",
  },
  {
    id: "PM",
    kind: "pedestrian",
    minGoMs: 7000,
    clearanceMs: 17_000,
    redClearanceMs: 0,
    scheduledFlash: "red",
  },
];

function detector(d: Partial<Detector> & Pick<Detector, "id" | "kind" | "calls" | "number">): Detector {
  return {
    extends: d.kind === "vehicle" ? d.calls : [],
    delayMs: 0,
    extendMs: 0,
    locking: true,
    failedRecall: "max",
    noActivityMs: 0,
    maxPresenceMs: 0,
    chatterPerMinute: 0,
    ...d,
  };
}

/** The S loops (detector 0) and the PM push buttons (detector 1), diagnostics off unless given. */
function elm(loops: Partial<Detector> = {}, buttons: Partial<Detector> = {}): Intersection {
  return {
    id: "elm",
    name: "Main St & Elm Ave",
    corridorId: "main-street",
    groups: GROUPS,
    permissive: [
      [false, false, true, false],
      [false, false, false, true],
      [true, false, false, false],
      [false, true, false, false],
    ],
    startupFlashMs: 6000,
    startupAllRedMs: 4000,
    flashPeriodMs: 1091,
    monitor: { conflictMs: 300, redFailMs: 800, mismatchMs: 1000 },
    detectors: [
      detector({ id: "S-loops", kind: "vehicle", calls: [S], number: 1, ...loops }),
      detector({ id: "PM-buttons", kind: "pedestrian", calls: [PM], number: 1, ...buttons }),
    ],
  };
}

/** 02:00 UTC. */
const SYNC_MS = 7_200_000;

const SIDE: StageActuation = {
  minGreenMs: 7000,
  passageMs: 3000,
  maxGreenMs: 20_000,
  recall: "none",
  pedestrianRecall: false,
};

function compile(
  x: Intersection,
  cycleMs: number,
  coordinated: string,
  stages: StageSpec[],
): IntersectionPlan {
  const compiled = compilePlan(
    x,
    { planId: "act", version: 1, cycleMs, dailySyncMs: SYNC_MS },
    {
      offsetMs: 0,
      offsetReference: "start-of-green",
      coordinatedStage: coordinated,
      correction: { mode: "dwell", maxDwellPercent: 25 },
      stages,
    },
  );
  if (!compiled.ok) throw new Error(compiled.issues.map((i) => i.message).join("\n"));
  return compiled.value;
}

/** Elm's plan: 80 s, main (coordinated) 0–46 s, side (actuated) 46–80 s of every cycle. */
function elmPlan(x: Intersection, side: Partial<StageActuation> = {}): IntersectionPlan {
  return compile(x, 80_000, "main", [
    { id: "main", groups: ["M", "PS"], splitMs: 46_000 },
    { id: "side", groups: ["S", "PM"], splitMs: 34_000, actuated: { ...SIDE, ...side } },
  ]);
}

const START_UP_MS = 10_000;

/**
 * A controller driven at 100 ms ticks, its first cycle starting on an ideal cycle start (plus `phaseMs`):
 * each tick, then the readback, then the detectors' readings (`inputs`, by detector index, set by the
 * test). Every tick's aspects go through the safety oracle.
 */
class Drive {
  readonly x: VirtualIntersection;
  /** Mono time of the first cycle's start: times in the tests are counted from here. */
  readonly t0: number;
  readonly inputs: (boolean | null)[];
  readonly aspects: { t: number; aspects: readonly Aspect[] }[] = [];
  readonly events: { t: number; event: SignalEvent }[] = [];
  private readonly oracle: SafetyOracle;

  constructor(
    readonly intersection: Intersection,
    readonly plan: IntersectionPlan,
    phaseMs = 0,
  ) {
    const day = Date.UTC(2026, 0, 5, 8, 0, 0);
    const idealStart = day - lateness(plan, day) + 10 * plan.cycleMs;
    this.x = new VirtualIntersection(intersection, plan, {
      monoMs: 1000,
      wallMs: idealStart - START_UP_MS + phaseMs,
    });
    this.t0 = 1000 + START_UP_MS;
    this.inputs = (intersection.detectors ?? []).map(() => false);
    this.oracle = new SafetyOracle(intersection);
  }

  get now(): number {
    return this.x.monoMs - this.t0;
  }

  /** Runs to `t` (ms after the first cycle's start); `each` may set the inputs before each reading. */
  runTo(t: number, each?: (now: number) => void): void {
    while (this.now < t) {
      this.x.tick(100);
      each?.(this.now);
      this.x.dispatch({ type: "detectors", readings: [...this.inputs] });
      const violation = this.oracle.observe(this.x.lastAspects, this.x.monoMs);
      if (violation) throw new Error(`safety: ${violation}`);
      expect(this.x.mode).not.toBe("fault");
      this.aspects.push({ t: this.now, aspects: this.x.lastAspects });
      for (const s of this.x.signals.splice(0))
        this.events.push({ t: s.now.monoMs - this.t0, event: s.event });
    }
  }

  /** The aspect of group g at t (the last tick at or before it). */
  at(t: number, g: number): Aspect | undefined {
    let found: Aspect | undefined;
    for (const a of this.aspects) {
      if (a.t > t) break;
      found = a.aspects[g];
    }
    return found;
  }

  /** When group g changed to `aspect`, within [from, to). */
  onsets(
    g: number,
    aspect: Aspect,
    from = Number.NEGATIVE_INFINITY,
    to = Number.POSITIVE_INFINITY,
  ): number[] {
    const out: number[] = [];
    let prev: Aspect | undefined;
    for (const a of this.aspects) {
      const now = a.aspects[g];
      if (now === aspect && prev !== aspect && a.t >= from && a.t < to) out.push(a.t);
      prev = now;
    }
    return out;
  }

  /** Whether group g shows `aspect` at some tick within [from, to). */
  shows(g: number, aspect: Aspect, from: number, to: number): boolean {
    return this.aspects.some((a) => a.t >= from && a.t < to && a.aspects[g] === aspect);
  }

  /** Whether group g shows `aspect` at every tick within [from, to). */
  always(g: number, aspect: Aspect, from: number, to: number): boolean {
    return this.aspects.filter((a) => a.t >= from && a.t < to).every((a) => a.aspects[g] === aspect);
  }

  of<T extends SignalEvent["type"]>(type: T): { t: number; event: Extract<SignalEvent, { type: T }> }[] {
    return this.events.filter((e) => e.event.type === type) as {
      t: number;
      event: Extract<SignalEvent, { type: T }>;
    }[];
  }
}

const CYCLE = 80_000;
/** Main's band ends 46 s into each cycle; it starts to clear (PS, 10 s) at 36 s, M (4 + 2 s) at 40 s. */
const BAND_END = 46_000;

describe("an actuated side street (elm)", () => {
  it("with no calls never serves S or PM, and M rests in green through every cycle", () => {
    const d = new Drive(elm(), elmPlan(elm()));
    d.runTo(5 * CYCLE - 1000);
    expect(d.shows(S, "green", 0, 5 * CYCLE)).toBe(false);
    expect(d.shows(PM, "walk", 0, 5 * CYCLE)).toBe(false);
    expect(d.always(M, "green", 0, 5 * CYCLE)).toBe(true);
    expect(d.always(PS, "walk", 0, 5 * CYCLE)).toBe(true);
    expect(d.aspects.at(-1)?.t).toBe(5 * CYCLE - 1000);
    // The cycle still rolls on the grid, in step, while M rests.
    expect(d.of("cycle-start").map((e) => [e.t, e.event.offsetErrorMs])).toEqual([
      [0, 0],
      [CYCLE, 0],
      [2 * CYCLE, 0],
      [3 * CYCLE, 0],
      [4 * CYCLE, 0],
    ]);
    expect(d.of("stage-terminated")).toEqual([]);
  });

  it("serves one call next, at the band's end, and gaps out a passage time after the last vehicle, after the minimum green", () => {
    const d = new Drive(elm({ locking: false }), elmPlan(elm()));
    const c = CYCLE; // the second cycle
    // A vehicle arrives during main's band and stays until S has shown its minimum green (7 s).
    d.runTo(3 * CYCLE, (t) => {
      d.inputs[0] = t >= c + 20_000 && t < c + BAND_END + 7000;
    });
    // M clears at the band's end less its clearances: main's band is never cut for the call.
    expect(d.onsets(M, "yellow", c, c + CYCLE)).toEqual([c + BAND_END - 6000]);
    expect(d.onsets(S, "green", 0, 3 * CYCLE)).toEqual([c + BAND_END]);
    // Last extension at 53 s (the tick after the last reading on), passage 3 s: gap-out at 56 s.
    const gapOut = c + BAND_END + 7000 + 3000;
    expect(d.onsets(S, "yellow")).toEqual([gapOut]);
    expect(d.of("stage-terminated")).toEqual([
      {
        t: gapOut,
        event: { type: "stage-terminated", planId: "act", stage: "side", reason: "gap-out", groups: [S] },
      },
    ]);
    // Nobody pressed the button: PM stays at DON'T WALK while S is green.
    expect(d.shows(PM, "walk", 0, 3 * CYCLE)).toBe(false);
    // Early return to green: M goes once S has cleared (3.5 + 2 s), before the next cycle begins.
    expect(d.onsets(M, "green", c, 3 * CYCLE)).toEqual([gapOut + 5500]);
    expect(d.always(M, "green", gapOut + 5500, 3 * CYCLE)).toBe(true);
  });

  it("gaps out at the minimum green when the vehicle left before the green", () => {
    const d = new Drive(elm(), elmPlan(elm()));
    const c = CYCLE;
    d.runTo(2 * CYCLE, (t) => {
      d.inputs[0] = t >= c + 10_000 && t < c + 10_500; // a locking call
    });
    expect(d.onsets(S, "green")).toEqual([c + BAND_END]);
    expect(d.onsets(S, "yellow")).toEqual([c + BAND_END + 7000]);
    expect(d.of("stage-terminated").map((e) => [e.t, e.event.reason])).toEqual([
      [c + BAND_END + 7000, "gap-out"],
    ]);
  });

  it("maxes out at the maximum green under continuous presence", () => {
    const d = new Drive(elm(), elmPlan(elm(), { maxGreenMs: 20_000 }));
    const c = CYCLE;
    d.runTo(2 * CYCLE, (t) => {
      d.inputs[0] = t >= c + 20_000 && t < c + 75_000;
    });
    expect(d.onsets(S, "green")).toEqual([c + BAND_END]);
    expect(d.onsets(S, "yellow")).toEqual([c + BAND_END + 20_000]);
    expect(d.of("stage-terminated").map((e) => [e.t, e.event.reason])).toEqual([
      [c + BAND_END + 20_000, "max-out"],
    ]);
    // Still there after the max-out (S no longer green): its locked call is served in the next cycle.
    d.runTo(3 * CYCLE);
    expect(d.onsets(S, "green", 2 * CYCLE, 3 * CYCLE)).toEqual([2 * CYCLE + BAND_END]);
  });

  it("forces off at the window's end when the maximum green would run past it, and the next cycle starts on time", () => {
    const d = new Drive(elm({ locking: false }), elmPlan(elm(), { maxGreenMs: 40_000 }));
    const c = CYCLE;
    d.runTo(2 * CYCLE + 20_000, (t) => {
      d.inputs[0] = t >= c + 20_000 && t < 2 * CYCLE;
    });
    const forceOff = 2 * CYCLE - 5500; // the window's end less S's yellow and red clearance
    expect(d.onsets(S, "green")).toEqual([c + BAND_END]);
    expect(d.onsets(S, "yellow")).toEqual([forceOff]);
    expect(d.of("stage-terminated").map((e) => [e.t, e.event.reason])).toEqual([[forceOff, "force-off"]]);
    expect(d.onsets(M, "green", c, 3 * CYCLE)).toEqual([2 * CYCLE]);
    expect(d.of("cycle-start").at(-1)).toEqual({
      t: 2 * CYCLE,
      event: { type: "cycle-start", planId: "act", offsetErrorMs: 0, correctionMs: 0 },
    });
  });

  it("on max recall keeps S to its force-off every cycle, with no call", () => {
    const d = new Drive(elm(), elmPlan(elm(), { recall: "max" }));
    d.runTo(3 * CYCLE);
    for (const c of [0, CYCLE, 2 * CYCLE]) {
      expect(d.onsets(S, "green", c, c + CYCLE)).toEqual([c + BAND_END]);
      expect(d.onsets(S, "yellow", c, c + CYCLE)).toEqual([c + CYCLE - 5500]);
    }
    expect(d.of("stage-terminated").map((e) => e.event.reason)).toEqual([
      "force-off",
      "force-off",
      "force-off",
    ]);
  });

  it("walks PM when its button is pressed, holding S green through the walk and its clearance", () => {
    const d = new Drive(elm(), elmPlan(elm()));
    const c = CYCLE;
    d.runTo(2 * CYCLE, (t) => {
      d.inputs[1] = t >= c + 10_000 && t < c + 10_500;
    });
    const start = c + BAND_END;
    expect(d.onsets(PM, "walk")).toEqual([start]);
    expect(d.onsets(PM, "ped-clearance")).toEqual([start + 7000]);
    expect(d.onsets(PM, "dont-walk", start)).toEqual([start + 24_000]);
    // S is served too (a called stage shows all its vehicle groups), gaps out at its minimum green,
    // and ends with PM: green until the stage's end less its own clearances.
    expect(d.onsets(S, "green")).toEqual([start]);
    expect(d.of("stage-terminated").map((e) => [e.t, e.event.reason])).toEqual([[start + 7000, "gap-out"]]);
    expect(d.onsets(S, "yellow")).toEqual([start + 24_000 - 5500]);
    expect(d.onsets(M, "green", c)).toEqual([start + 24_000]);
  });

  it("signals a chattering detector as failed and then serves S every cycle, on the detector's recall", () => {
    const x = elm({ chatterPerMinute: 20, failedRecall: "min" });
    const d = new Drive(x, elmPlan(x));
    const from = CYCLE + 10_000;
    d.runTo(6 * CYCLE, (t) => {
      if (t >= from) d.inputs[0] = !d.inputs[0]; // flips at every reading
    });
    const failed = d.of("detector-failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]?.event).toMatchObject({ detector: 0, reason: "chatter", recall: "min" });
    // The 21st on-transition (one every other reading) marks it failed.
    expect(failed[0]?.t).toBe(from + 40 * 100);
    expect(d.of("detector-restored")).toEqual([]);
    // Served every cycle after: its own window, minimum green only (a failed detector extends nothing).
    for (let c = 2 * CYCLE; c < 6 * CYCLE; c += CYCLE) {
      expect(d.onsets(S, "green", c, c + CYCLE)).toEqual([c + BAND_END]);
      expect(d.onsets(S, "yellow", c, c + CYCLE)).toEqual([c + BAND_END + 7000]);
    }
    expect(d.shows(PM, "walk", 0, 6 * CYCLE)).toBe(false);
  });

  it("fails a detector that gives no reading for 2 s (max recall: S to its force-off), and restores it when readings come back", () => {
    const d = new Drive(elm(), elmPlan(elm()));
    const lost = CYCLE + 10_000;
    const back = 4 * CYCLE + 10_000;
    d.runTo(6 * CYCLE, (t) => {
      d.inputs[0] = t >= lost && t < back ? null : false;
    });
    const failed = d.of("detector-failed");
    // Its last reading came at lost − 100 ms.
    expect(failed.map((e) => [e.t, e.event.reason, e.event.recall])).toEqual([
      [lost + 1900, "no-reading", "max"],
    ]);
    expect(d.of("detector-restored")).toEqual([
      { t: back, event: { type: "detector-restored", detector: 0 } },
    ]);
    for (const c of [CYCLE, 2 * CYCLE, 3 * CYCLE]) {
      expect(d.onsets(S, "green", c, c + CYCLE)).toEqual([c + BAND_END]);
      expect(d.onsets(S, "yellow", c, c + CYCLE)).toEqual([c + CYCLE - 5500]);
    }
    // Restored, with no vehicle: S is not served any more.
    expect(d.shows(S, "green", 4 * CYCLE, 6 * CYCLE)).toBe(false);
  });
});

/** Four vehicle groups in conflict with one another, each with its own loop (detector i calls group i). */
function four(): Intersection {
  const v = (i: number): SignalGroup => ({
    id: `V${i}`,
    kind: "vehicle",
    minGoMs: 5000,
    clearanceMs: 3000,
    redClearanceMs: 1000,
    scheduledFlash: "red",
  });
  return {
    id: "four",
    name: "four",
    corridorId: "c",
    groups: [v(0), v(1), v(2), v(3)],
    permissive: [0, 1, 2, 3].map(() => [false, false, false, false]),
    startupFlashMs: 6000,
    startupAllRedMs: 4000,
    flashPeriodMs: 1091,
    monitor: { conflictMs: 300, redFailMs: 800, mismatchMs: 1000 },
    detectors: [0, 1, 2, 3].map((g) => detector({ id: `D${g}`, kind: "vehicle", calls: [g], number: g + 1 })),
  };
}

const SHORT: StageActuation = {
  minGreenMs: 5000,
  passageMs: 2000,
  maxGreenMs: 15_000,
  recall: "none",
  pedestrianRecall: false,
};

describe("actuated stages around a coordinated stage that is not the first", () => {
  it("serves a call that comes while the coordinated stage rests before its band in the called stage's own window (it fits there), not after the band", () => {
    // A 0–30 s, main 30–70 s (coordinated), B 70–85 s, C 85–100 s (all but main actuated). Nothing is
    // called in the first cycle: main rests in green into the second. A call for A at 101 s, as main
    // rests before its band (130 s): main clears (4 s) and A, whose minimum (5 + 3 + 1 s) fits before
    // its force-off at 130 s, is served in its window.
    const x = four();
    const plan = compile(x, 100_000, "main", [
      { id: "A", groups: ["V0"], splitMs: 30_000, actuated: SHORT },
      { id: "main", groups: ["V1"], splitMs: 40_000 },
      { id: "B", groups: ["V2"], splitMs: 15_000, actuated: SHORT },
      { id: "C", groups: ["V3"], splitMs: 15_000, actuated: SHORT },
    ]);
    const d = new Drive(x, plan);
    d.runTo(3 * 100_000, (t) => {
      d.inputs[0] = t >= 101_000 && t < 101_500;
    });
    const greens = d.onsets(0, "green", 100_000);
    expect(greens.length).toBeGreaterThan(0);
    // Its force-off is its window's end: a stage is never started after it.
    expect(greens[0]).toBeLessThan(130_000);
    expect(
      d.of("stage-terminated").filter((e) => e.t >= 100_000 && e.event.stage === "A")[0]?.event.reason,
    ).not.toBe("force-off");
  });

  it("does not hold a stage that gapped out past its force-off or its maximum green, whatever follows in the next cycle", () => {
    // A 0–20 s, main 20–50 s (coordinated), B 50–70 s, C 70–90 s (all but main actuated, max green 15 s).
    // In the second cycle (from 90 s), B is called at 100 s and served from 140 s; it gaps out at its
    // minimum green (145 s). C is not called; A is, at 142 s (for the next cycle).
    const x = four();
    const plan = compile(x, 90_000, "main", [
      { id: "A", groups: ["V0"], splitMs: 20_000, actuated: SHORT },
      { id: "main", groups: ["V1"], splitMs: 30_000 },
      { id: "B", groups: ["V2"], splitMs: 20_000, actuated: SHORT },
      { id: "C", groups: ["V3"], splitMs: 20_000, actuated: SHORT },
    ]);
    const d = new Drive(x, plan);
    d.runTo(3 * 90_000, (t) => {
      d.inputs[2] = t >= 100_000 && t < 100_500;
      d.inputs[0] = t >= 142_000 && t < 142_500;
    });
    expect(d.onsets(2, "green")).toEqual([140_000]);
    const [yellow] = d.onsets(2, "yellow");
    // B's force-off is 160 s (less its clearances, 4 s); its maximum green ends at 155 s.
    expect(yellow).toBeLessThanOrEqual(160_000 - 4000);
    expect(yellow).toBeLessThanOrEqual(140_000 + SHORT.maxGreenMs);
    // And its end is signalled: gap-out at 145 s.
    expect(
      d
        .of("stage-terminated")
        .filter((e) => e.event.stage === "B")
        .map((e) => [e.t, e.event.reason]),
    ).toEqual([[145_000, "gap-out"]]);
  });

  it("serves a called stage whose split just holds its minimum green and clearances, whatever the ticks' phase against the cycle", () => {
    // main (coordinated) 30 s, side 12.5 s = S's minimum green 7 s + yellow 3.5 s + red clearance 2 s: a
    // plan compilePlan accepts. The ticks fall 50 ms after the plan's grid.
    const x: Intersection = {
      ...elm(),
      groups: GROUPS.slice(0, 2),
      permissive: [
        [false, false],
        [false, false],
      ],
      detectors: [detector({ id: "S-loops", kind: "vehicle", calls: [S], number: 1 })],
    };
    const plan = compile(x, 42_500, "main", [
      { id: "main", groups: ["M"], splitMs: 30_000 },
      { id: "side", groups: ["S"], splitMs: 12_500, actuated: SIDE },
    ]);
    expect(plan.stages[1]?.minMs).toBe(12_500);
    const d = new Drive(x, plan, 50);
    d.runTo(6 * 42_500, (t) => {
      d.inputs[0] = t >= 5000 && t < 5500; // a locking call in the first cycle
    });
    // Served within two cycles.
    expect(d.onsets(S, "green", 0, 2 * 42_500 + 1000).length).toBeGreaterThan(0);
  });

  it("hands over at the cycle's boundary from a coordinated stage that is the last one to a called first stage, whatever the ticks' phase", () => {
    // Elm with the side street first: side 0–34 s (actuated), main 34–80 s (coordinated, the last
    // stage). S is called during main's band in the second cycle (at 120 s); main clears at its band's
    // end (160 s) and S starts the third cycle. The ticks fall 50 ms after the plan's grid.
    const x = elm();
    const plan = compile(x, CYCLE, "main", [
      { id: "side", groups: ["S", "PM"], splitMs: 34_000, actuated: SIDE },
      { id: "main", groups: ["M", "PS"], splitMs: 46_000 },
    ]);
    const d = new Drive(x, plan, 50);
    d.runTo(4 * CYCLE, (t) => {
      d.inputs[0] = t >= 120_000 && t < 120_500;
    });
    expect(d.onsets(M, "yellow", CYCLE, 3 * CYCLE)).toEqual([2 * CYCLE - 6000]);
    const [green] = d.onsets(S, "green", CYCLE);
    expect(green).toBeGreaterThanOrEqual(2 * CYCLE);
    expect(green).toBeLessThanOrEqual(2 * CYCLE + 300);
  });

  it("ends a stage on recall that serves no group (its walks not called) at its force-off, and does not hold the next cycle in all-red", () => {
    // A 0–20 s (S, actuated), main 20–60 s (coordinated), W 60–90 s (PM only, actuated, max recall
    // without pedestrian recall: served every cycle, walking only when the button calls). Nobody
    // presses the button: W shows nothing but runs to its force-off, 90 s. S is called at 80 s: the
    // second cycle serves it in its window (90–110 s), and main has its band (110–150 s) green.
    const x = elm();
    const plan = compile(x, 90_000, "main", [
      { id: "A", groups: ["S"], splitMs: 20_000, actuated: SIDE },
      { id: "main", groups: ["M", "PS"], splitMs: 40_000 },
      { id: "W", groups: ["PM"], splitMs: 30_000, actuated: { ...SIDE, recall: "max", maxGreenMs: 30_000 } },
    ]);
    const d = new Drive(x, plan);
    d.runTo(2 * 90_000, (t) => {
      d.inputs[0] = t >= 80_000 && t < 80_500;
    });
    expect(d.shows(S, "green", 90_000, 110_000)).toBe(true);
    expect(d.always(M, "green", 110_000 + 1000, 150_000 - 6000)).toBe(true);
  });
});

describe("compilePlan of an actuated plan", () => {
  /** A walk P that may run beside either street, and the two streets, which conflict. */
  const crossing: Intersection = {
    ...elm(),
    groups: [
      { ...(GROUPS[M] as SignalGroup), id: "V0" },
      { ...(GROUPS[S] as SignalGroup), id: "V1" },
      { ...(GROUPS[PM] as SignalGroup), id: "P" },
    ],
    permissive: [
      [false, false, true],
      [false, false, true],
      [true, true, false],
    ],
    detectors: [
      detector({ id: "V0-loops", kind: "vehicle", calls: [0], number: 1 }),
      detector({ id: "P-buttons", kind: "pedestrian", calls: [2], number: 2 }),
    ],
  };
  const plan = (pedestrianRecall: boolean, mainSplitMs: number) =>
    compilePlan(
      crossing,
      { planId: "act", version: 1, cycleMs: 80_000, dailySyncMs: SYNC_MS },
      {
        offsetMs: 0,
        offsetReference: "start-of-green",
        coordinatedStage: "main",
        correction: { mode: "dwell", maxDwellPercent: 10 },
        stages: [
          { id: "main", groups: ["V1", "P"], splitMs: mainSplitMs },
          {
            id: "side",
            groups: ["V0", "P"],
            splitMs: 80_000 - mainSplitMs,
            actuated: { ...SIDE, pedestrianRecall },
          },
        ],
      },
    );

  it("refuses a fixed stage too short for a walk that the actuated stages around it may not show: it would start and end there, overrunning its split every cycle", () => {
    // P walks 7 s and clears 17 s: in fixed time it runs on through both stages and needs no room in
    // either; the actuated side stage shows it only when called, so the main stage may have to hold it all.
    const refused = plan(false, 20_000);
    expect(refused.ok).toBe(false);
    expect(refused.ok ? [] : refused.issues.map((i) => i.message)).toEqual([
      "plan act, intersection elm: stage main has a split of 20 s, shorter than the 24 s it needs (group P: walk 7 s + pedestrian clearance 17 s + red clearance 0 s, since the actuated stage side before it may not show it and the actuated stage side after it may not go on with it (no pedestrian recall))",
    ]);
    expect(plan(false, 24_000).ok).toBe(true);
    // On pedestrian recall the side stage walks P every cycle: the walk runs on, as in fixed time.
    expect(plan(true, 20_000).ok).toBe(true);
  });
});
