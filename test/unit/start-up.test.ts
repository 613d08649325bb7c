import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import type { Aspect, Intersection, Lamps } from "../../gateway/core/model.js";
import { holdRefusal, planChangeRefusal } from "../../gateway/core/sequencer.js";
import type { PreviousRun, SignalEvent } from "../../gateway/core/sequencer-types.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";
import { VirtualIntersection } from "../support/drive.js";
import { withoutActuation } from "../support/fixture-intersection.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");
const intersection = elm.intersection.intersection;
// off-peak at elm, fixed-time: 80 s cycle (main 46 s: M and PS; side 34 s: S and PM), ideal cycle
// starts on the daily sync point (02:00 UTC) modulo 80 s; start-up 6 s flash + 4 s all-red.
const plan = withoutActuation(elm.initialPlan);
const SYNC = Date.UTC(2026, 0, 5, 2, 0, 0);
const STARTUP_MS = 10_000;
const [M, S, PS] = [0, 1, 2];

/** A controller whose start-up ends (and the cycle is entered) `positionMs` into an ideal cycle. */
function enteringAt(positionMs: number): VirtualIntersection {
  return new VirtualIntersection(intersection, plan, {
    monoMs: 5_000,
    wallMs: SYNC + positionMs - STARTUP_MS,
  });
}

function run(x: VirtualIntersection, ms: number, oracle?: SafetyOracle): void {
  const until = x.monoMs + ms;
  while (x.monoMs < until) {
    x.tick(100);
    const violation = oracle?.observe(x.lastAspects, x.monoMs);
    if (violation) expect.fail(violation);
    expect(x.mode, JSON.stringify(x.state.mon.latch)).not.toBe("fault");
  }
}

function events<T extends SignalEvent["type"]>(x: VirtualIntersection, type: T) {
  return x.signals.filter((s) => s.event.type === type) as {
    now: { monoMs: number; wallMs: number };
    event: Extract<SignalEvent, { type: T }>;
  }[];
}

/** The wall-clock position in the ideal cycle, in ms. */
const position = (wallMs: number) => (((wallMs - SYNC) % 80_000) + 80_000) % 80_000;

describe("start-up enters the cycle where the offset puts it (issue 19, item 17)", () => {
  it("enters the stage whose window holds the position, and its first boundary is in step", () => {
    const x = enteringAt(10_000);
    run(x, STARTUP_MS + 80_000 + 1_000);
    const stages = events(x, "stage-start");
    expect(stages[0]?.event.stage).toBe("main");
    expect(position(stages[0]?.now.wallMs as number)).toBeLessThan(10_200);
    // Main runs to its window's end (46 s into the cycle), not a whole split from the start.
    expect(stages[1]?.event.stage).toBe("side");
    expect(Math.abs(position(stages[1]?.now.wallMs as number) - 46_000)).toBeLessThanOrEqual(200);
    const cycles = events(x, "cycle-start");
    expect(cycles[0]?.event).toMatchObject({ offsetErrorMs: 0, correctionMs: 0 });
    expect(Math.abs(cycles[1]?.event.offsetErrorMs as number)).toBeLessThanOrEqual(200);
    expect(x.state.seq.inStep).toBe(true);
  });

  it("enters the next stage early when what is left of the window cannot hold a fresh start", () => {
    // 31 s in: main has 15 s left, less than M's 10 s minimum green + 4 s yellow + 2 s red clearance.
    const x = enteringAt(31_000);
    run(x, STARTUP_MS + 60_000);
    const stages = events(x, "stage-start");
    expect(stages[0]?.event.stage).toBe("side");
    // Side runs from now to its own window's end: longer than its split, never shorter.
    const next = stages[1];
    expect(next?.event.stage).toBe("main");
    expect(Math.abs(position(next?.now.wallMs as number))).toBeLessThanOrEqual(200);
    expect(Math.abs(events(x, "cycle-start")[1]?.event.offsetErrorMs as number)).toBeLessThanOrEqual(200);
  });

  it("starts a cycle at once within the in-step tolerance of a boundary", () => {
    const x = enteringAt(79_800);
    run(x, STARTUP_MS + 1_000);
    expect(events(x, "stage-start")[0]?.event.stage).toBe("main");
    expect(x.state.seq.inStep).toBe(true);
  });
});

/** Runs elm in step to `positionMs` of a cycle, then "crashes": the module holds the last lamps. */
function crashedAt(positionMs: number): {
  x: VirtualIntersection;
  lamps: readonly Lamps[];
  aspects: readonly Aspect[];
} {
  const x = enteringAt(0);
  run(x, STARTUP_MS + 80_000 + positionMs);
  return { x, lamps: x.lastLamps, aspects: x.lastAspects };
}

function restart(
  crashed: VirtualIntersection,
  lamps: readonly Lamps[],
  previous: PreviousRun,
  gapMs: number,
  config: Intersection = intersection,
): VirtualIntersection {
  const y = new VirtualIntersection(config, plan, {
    monoMs: crashed.monoMs + gapMs,
    wallMs: crashed.wallMs + gapMs,
  });
  y.dispatch({ type: "field-at-start", observed: lamps, previous });
  return y;
}

describe("a restart takes the lamps over where they prove the cycle is (issue 19, item 16)", () => {
  it("resumes the stage shown after an abrupt end: no flash, the green goes on to its window's end", () => {
    const { x, lamps } = crashedAt(20_000);
    expect(x.lastAspects[M]).toBe("green");
    const y = restart(x, lamps, "ended-abruptly", 1_500);
    expect(events(y, "start-up")[0]?.event).toMatchObject({ how: "resumed" });
    const shown: Aspect[][] = [];
    const until = y.monoMs + 40_000;
    while (y.monoMs < until) {
      y.tick(100);
      shown.push([...y.lastAspects]);
      expect(y.mode).not.toBe("fault");
    }
    expect(shown.some((a) => a.includes("red-flash"))).toBe(false);
    // M green from the first write until its clearance before the side window (46 s into the cycle).
    const firstYellow = shown.findIndex((a) => a[M] === "yellow");
    expect(shown.slice(0, firstYellow).every((a) => a[M] === "green")).toBe(true);
    expect(y.mode).toBe("coordinated");
    const side = events(y, "stage-start").find((s) => s.event.stage === "side");
    expect(Math.abs(position(side?.now.wallMs as number) - 46_000)).toBeLessThanOrEqual(200);
  });

  it("resumes a first stage a start-up entered early, in the last window's tail, on the next cycle's grid", () => {
    // 70 s in: side has 10 s left, too little for its walk and clearance: main entered early.
    const x = enteringAt(70_000);
    run(x, STARTUP_MS + 3_000);
    expect(events(x, "cycle-start")[0]?.event).toMatchObject({ entered: "main" });
    expect(x.lastAspects[M]).toBe("green");
    const y = restart(x, x.lastLamps, "ended-abruptly", 600);
    expect(events(y, "start-up")[0]?.event).toMatchObject({
      how: "resumed",
      reason: expect.stringContaining("of the next cycle, started early"),
    });
    run(y, 70_000);
    // Main runs on to its window's end in the next cycle (46 s in), and side follows there.
    const side = events(y, "stage-start").find((s) => s.event.stage === "side");
    expect(Math.abs(position(side?.now.wallMs as number) - 46_000)).toBeLessThanOrEqual(200);
    expect(events(y, "cycle-start")[0]?.event.offsetErrorMs ?? 0).toBeLessThanOrEqual(200);
  });

  it("starts again, cold and without a fault, when a module's watchdog dropped the lamps before the first write", () => {
    const { x, lamps } = crashedAt(20_000);
    const y = restart(x, lamps, "ended-abruptly", 900);
    expect(events(y, "start-up")[0]?.event.how).toBe("resumed");
    y.tick(100);
    // The module's safe state, read just before that first write: every head red, no WALK.
    const safe = intersection.groups.map(() => ({ red: true, yellow: false, green: false }));
    y.dispatch({
      type: "field-dropped",
      observed: safe,
      detail: "device io1: its watchdog dropped the lamps",
    });
    expect(events(y, "start-up")[1]?.event).toMatchObject({
      how: "cold",
      reason: expect.stringContaining("dropped"),
    });
    expect(y.state.seq.mode).toBe("startup-flash");
    const oracle = new SafetyOracle(intersection);
    // Flash and all-red, and no green before PM's 17 s pedestrian clearance (frozen, unseen) could end.
    run(y, 16_000, oracle);
    expect(y.state.seq.mode).toBe("startup-all-red");
    run(y, 2_000, oracle);
    expect(y.state.mon.latch).toBeNull();
    expect(y.state.seq.mode).toBe("running");
  });

  it("gives a pedestrian clearance the readback cannot see its full time before a conflicting green", () => {
    // 38 s into main: PS (crossing Elm Ave) is in its 10 s clearance, M still green.
    const { x, lamps, aspects } = crashedAt(38_000);
    expect(aspects[PS]).toBe("ped-clearance");
    expect(aspects[M]).toBe("green");
    const crashedAtMs = x.monoMs;
    const y = restart(
      x,
      lamps.map((l, g) => (g === PS ? { red: true, yellow: false, green: false } : l)),
      "ended-abruptly",
      200,
    );
    expect(events(y, "start-up")[0]?.event).toMatchObject({ how: "resumed" });
    let sGreenAt = Number.NaN;
    const until = y.monoMs + 60_000;
    while (y.monoMs < until && Number.isNaN(sGreenAt)) {
      y.tick(100);
      if (y.lastAspects[S] === "green") sGreenAt = y.monoMs;
    }
    const ps = intersection.groups[PS] as Intersection["groups"][number];
    expect(sGreenAt - crashedAtMs).toBeGreaterThanOrEqual(ps.clearanceMs + ps.redClearanceMs);
  });

  it("does not take over without proof, a clearance under way, or a stage the clock does not say", () => {
    const mid = crashedAt(20_000);
    const unknown = restart(mid.x, mid.lamps, "unknown", 1_000);
    expect(events(unknown, "start-up")[0]?.event.how).toBe("cold");
    expect(unknown.state.seq.mode).toBe("startup-clearing");

    const yellow = crashedAt(41_000);
    expect(yellow.aspects[M]).toBe("yellow");
    const cleared = restart(yellow.x, yellow.lamps, "ended-abruptly", 1_000);
    expect(events(cleared, "start-up")[0]?.event).toMatchObject({
      how: "cold",
      reason: expect.stringContaining("clearance"),
    });

    // The lamps show main, but 30 s later the clock says side: the dead process was not where the clock is.
    const late = restart(mid.x, mid.lamps, "ended-abruptly", 30_000);
    expect(events(late, "start-up")[0]?.event).toMatchObject({
      how: "cold",
      reason: expect.stringContaining("not stage side"),
    });
    expect(late.state.seq.mode).toBe("startup-clearing");
  });

  it("after a clean stop that left all-red: no start-up flash, all-red, then the cycle where the clock puts it", () => {
    const { x } = crashedAt(20_000);
    x.dispatch({ type: "stop" });
    run(x, 30_000);
    expect(x.state.seq.mode).toBe("stopped");
    const allRed = intersection.groups.map(
      () => ({ red: true, yellow: false, green: false }) satisfies Lamps,
    );
    const y = restart(x, allRed, "stopped-clean", 5_000);
    expect(events(y, "start-up")[0]?.event.how).toBe("warm");
    const shown: Aspect[][] = [];
    const until = y.monoMs + intersection.startupAllRedMs + 2_000;
    while (y.monoMs < until) {
      y.tick(100);
      shown.push([...y.lastAspects]);
    }
    expect(shown.some((a) => a.includes("red-flash") || a.includes("yellow-flash"))).toBe(false);
    expect(y.state.seq.mode).toBe("running");
    expect(events(y, "cycle-start")[0]?.event).toMatchObject({ offsetErrorMs: 0 });
    // A clean stop whose all-red is no longer shown (someone else wrote the outputs): the full start-up.
    const green = restart(
      x,
      x.lastLamps.map((l, g) => (g === M ? { red: false, yellow: false, green: true } : l)),
      "stopped-clean",
      5_000,
    );
    expect(events(green, "start-up")[0]?.event.how).toBe("cold");
  });
});

describe("a maintenance hold (issue 19, item 14)", () => {
  it("keeps the stage shown past its window, until released; then the sequence goes on and gets back in step", () => {
    const x = enteringAt(5_000);
    const oracle = new SafetyOracle(intersection);
    run(x, STARTUP_MS + 1_000, oracle);
    expect(holdRefusal(x.state.seq)).toBeNull();
    x.dispatch({ type: "hold", forMs: 10 * 60_000, by: "alice" });
    expect(x.mode).toBe("hold");
    expect(events(x, "hold")[0]?.event).toMatchObject({ held: true, by: "alice", stage: "main" });
    expect(planChangeRefusal(x.state.seq, x.wallMs + 60_000, false)).toMatch(/maintenance hold/);
    run(x, 120_000, oracle);
    expect(x.lastAspects[M]).toBe("green");
    expect(x.state.seq.stage).toBe(0);
    x.dispatch({ type: "release-hold", by: "alice" });
    // Released: the stage ends now, through its clearances (PS's 10 s + 2 s are the longest; M's 4 s
    // yellow and 2 s red clearance end with them).
    const released = x.monoMs;
    while (x.lastAspects[M] === "green") run(x, 100, oracle);
    expect(x.lastAspects[M]).toBe("yellow");
    const ps = intersection.groups[PS] as Intersection["groups"][number];
    expect(x.monoMs - released).toBeLessThanOrEqual(ps.clearanceMs + ps.redClearanceMs - 6_000 + 200);
    run(x, 6 * 80_000, oracle);
    expect(x.state.seq.inStep).toBe(true);
    expect(events(x, "hold").at(-1)?.event).toMatchObject({ held: false, reason: "operator" });
  });

  it("expires, is ended by flash, and is refused while not running", () => {
    const x = enteringAt(5_000);
    expect(holdRefusal(x.state.seq)).toMatch(/not running a plan/);
    run(x, STARTUP_MS + 1_000);
    x.dispatch({ type: "hold", forMs: 30_000, by: "bob" });
    run(x, 60_000);
    expect(events(x, "hold").at(-1)?.event).toMatchObject({ held: false, reason: "expired" });
    expect(x.mode).not.toBe("hold");
    x.dispatch({ type: "hold", forMs: 30_000, by: "bob" });
    x.dispatch({ type: "enter-flash" });
    run(x, 30_000);
    expect(events(x, "hold").at(-1)?.event).toMatchObject({ held: false, reason: "flash" });
    expect(x.mode).toBe("flash");
    expect(holdRefusal(x.state.seq)).toMatch(/not running a plan/);
  });

  it("holds an actuated plan's stage too, and it goes on safely after the release", () => {
    const x = new VirtualIntersection(intersection, elm.initialPlan, {
      monoMs: 5_000,
      wallMs: SYNC + 5_000 - STARTUP_MS,
    });
    const oracle = new SafetyOracle(intersection);
    run(x, STARTUP_MS + 1_000, oracle);
    x.dispatch({ type: "hold", forMs: 10 * 60_000, by: "alice" });
    run(x, 200_000, oracle);
    expect(x.state.seq.groups[M]?.interval).toBe("go");
    x.dispatch({ type: "release-hold", by: "alice" });
    run(x, 5 * 80_000, oracle);
    expect(x.mode).toBe("coordinated");
  });
});

describe("a reloaded intersection configuration (issue 19, item 16)", () => {
  it("takes effect with its plan at the next cycle boundary: the monitor and the sequencer use it from there", () => {
    const x = enteringAt(5_000);
    run(x, STARTUP_MS + 1_000);
    const longerYellow: Intersection = {
      ...intersection,
      groups: intersection.groups.map((g, i) => (i === M ? { ...g, clearanceMs: 5_000 } : g)),
    };
    x.dispatch({
      type: "schedule-plan",
      plan,
      activationWallMs: x.wallMs,
      txnId: null,
      intersection: longerYellow,
    });
    expect(x.state.seq.intersection).toBe(intersection);
    run(x, 80_000);
    expect(x.state.seq.intersection).toBe(longerYellow);
    expect(x.state.mon.intersection).toBe(longerYellow);
    // M's next yellow lasts the new 5 s.
    let yellowMs = 0;
    let seenYellow = false;
    const until = x.monoMs + 80_000;
    while (x.monoMs < until) {
      x.tick(100);
      if (x.lastAspects[M] === "yellow") {
        seenYellow = true;
        yellowMs += 100;
      } else if (seenYellow) break;
    }
    expect(yellowMs).toBeGreaterThanOrEqual(5_000);
    expect(yellowMs).toBeLessThanOrEqual(5_200);
  });
});
