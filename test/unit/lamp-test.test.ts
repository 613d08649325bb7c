import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { lampTestRefusal, readyToStop } from "../../gateway/core/controller.js";
import {
  type LampChannel,
  lampChannels,
  lampTestBoundMs,
  lampTestReport,
  MAX_LAMP_STEP_MS,
  MIN_LAMP_STEP_MS,
} from "../../gateway/core/lamp-test.js";
import { type Aspect, type Intersection, isActive, type Lamps } from "../../gateway/core/model.js";
import { stopBoundMs } from "../../gateway/core/sequencer.js";
import { SafetyOracle } from "../../simulators/signal-oracle.js";
import { VirtualIntersection } from "../support/drive.js";
import { setupArb } from "../support/random-signal.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");
const intersection = elm.intersection.intersection;
const TICK_MS = 100;

/** Elm, started and put into scheduled flash (fully entered). */
function inFlash(
  x = new VirtualIntersection(intersection, elm.initialPlan, {
    monoMs: 1_000,
    wallMs: Date.UTC(2026, 0, 5, 8),
  }),
) {
  x.tick(TICK_MS);
  x.dispatch({ type: "enter-flash" });
  for (let i = 0; i < 1000 && x.state.seq.mode !== "flash"; i++) x.tick(TICK_MS);
  x.tick(TICK_MS);
  expect(x.state.seq.mode).toBe("flash");
  return x;
}

/** The scheduled-flash picture: yellow-flash or red-flash on vehicle heads, pedestrian heads dark (lamps as lit). */
function flashPicture(x: Intersection): string[] {
  return x.groups.map((g) =>
    g.kind === "pedestrian" ? "dark" : g.scheduledFlash === "yellow" ? "yellow-flash" : "red-flash",
  );
}

interface Run {
  /** Every tick's aspects while the test ran, and the time since it was asked for. */
  readonly ticks: { t: number; aspects: readonly Aspect[] }[];
  readonly tookMs: number;
  readonly violation: string | null;
}

/** Ticks until the lamp test is over (or the limit), with `field` standing for the lamps' readback. */
function runTest(
  x: VirtualIntersection,
  limitMs: number,
  options: {
    field?: (written: readonly Lamps[]) => readonly Lamps[];
    oracle?: SafetyOracle;
    at?: (elapsedMs: number) => void;
  } = {},
): Run {
  const start = x.monoMs;
  const ticks: Run["ticks"] = [];
  while (x.state.lamp?.end === null) {
    const t = x.monoMs - start;
    if (t > limitMs) return { ticks, tookMs: Number.POSITIVE_INFINITY, violation: "did not end" };
    options.at?.(t);
    x.tick(TICK_MS, options.field);
    ticks.push({ t: x.monoMs - start, aspects: x.lastAspects });
    const violation = options.oracle?.observe(x.lastAspects, x.monoMs) ?? null;
    if (violation) return { ticks, tookMs: x.monoMs - start, violation };
  }
  return { ticks, tookMs: x.monoMs - start, violation: null };
}

const activeGroups = (aspects: readonly Aspect[]) =>
  aspects.flatMap((a, i) => (isActive(a) && a !== "yellow-flash" ? [i] : []));

describe("the lamp walk test", () => {
  it("lights every lamp of elm alone, in order, and reports each lit, then shows scheduled flash again", () => {
    const x = inFlash();
    expect(lampTestRefusal(x.state)).toBeNull();
    x.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    const oracle = new SafetyOracle(intersection);
    const run = runTest(x, 600_000, { oracle });
    expect(run.violation).toBeNull();
    expect(x.mode).toBe("flash");
    const channels = lampChannels(intersection);
    // elm: M, S (vehicles), PS, PM (pedestrians): 3 + 3 + 2 + 2 lamps.
    expect(channels.map((c) => `${intersection.groups[c.group]?.id} ${c.lamp}`)).toEqual([
      ...["M red", "M yellow", "M green", "S red", "S yellow", "S green"],
      ...["PS dontWalk", "PS walk", "PM dontWalk", "PM walk"],
    ]);
    const report = lampTestReport(x.state.lamp!, intersection);
    expect(report.state).toBe("completed");
    expect(report.results.map((r) => [r.group, r.lamp, r.verdict])).toEqual(
      channels.map((c) => [intersection.groups[c.group]?.id, c.lamp, "ok"]),
    );
    for (const r of report.results) expect(r.readings).toBeGreaterThanOrEqual(19);
    expect(report.message).toContain("completed: 10 of 10 lamps tested, all ok");
    expect(run.tookMs).toBeLessThanOrEqual(lampTestBoundMs(intersection, 2000, TICK_MS));
    // Never two groups showing anything but red, flashing red, DON'T WALK or dark at once.
    for (const tick of run.ticks.slice(0, -1))
      expect(activeGroups(tick.aspects).length).toBeLessThanOrEqual(1);
    // It begins with steady red everywhere (M flashed yellow), and ends in the flash picture.
    expect(run.ticks[0]?.aspects).toEqual(["red", "red", "dont-walk", "dont-walk"]);
    expect(x.lastAspects).toEqual(flashPicture(intersection));
    // M's green: shown alone for its 10 s minimum (more than the 2 s step), then 4 s of yellow, then red.
    const m = run.ticks.map((tick) => tick.aspects[0]).filter((a, i, all) => i === 0 || a !== all[i - 1]);
    // Entry red, its red lamp, its yellow (then red clearance), its green, then flashing red while the
    // others are lit, and back to its scheduled flash (yellow).
    expect(m).toEqual(["red", "yellow", "red", "green", "yellow", "red", "red-flash", "yellow-flash"]);
    const green = run.ticks.filter((tick) => tick.aspects[0] === "green");
    expect(green.length * TICK_MS).toBeGreaterThanOrEqual(10_000);
  });

  it("is refused unless the intersection is in scheduled flash, and while one runs", () => {
    const running = new VirtualIntersection(intersection, elm.initialPlan, {
      monoMs: 1_000,
      wallMs: Date.UTC(2026, 0, 5, 8),
    });
    while (running.lastAspects[0] !== "green") running.tick(TICK_MS);
    expect(lampTestRefusal(running.state)).toMatch(/not in scheduled flash \(.*\): put it in flash first/);
    running.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    expect(running.state.lamp).toBeNull();
    running.dispatch({ type: "enter-flash" });
    running.tick(TICK_MS);
    expect(lampTestRefusal(running.state)).toMatch(/still entering flash/);

    const faulted = inFlash();
    faulted.dispatch({ type: "device-lost", device: "io1", detail: "gone" });
    expect(lampTestRefusal(faulted.state)).toMatch(/a fault is latched \(device-lost\)/);

    const busy = inFlash();
    busy.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    expect(lampTestRefusal(busy.state)).toMatch(/already running \(by tech\)/);
  });

  it("reports a dead lamp as no current, without a fault, and goes on to the next", () => {
    const x = inFlash();
    x.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    // S's yellow (group 1) draws no current: dark whenever commanded.
    const deadYellow = (written: readonly Lamps[]) =>
      written.map((l, i) => (i === 1 ? { ...l, yellow: false } : l));
    const run = runTest(x, 600_000, { field: deadYellow, oracle: new SafetyOracle(intersection) });
    expect(run.violation).toBeNull();
    expect(x.state.mon.latch).toBeNull();
    const report = lampTestReport(x.state.lamp!, intersection);
    expect(report.state).toBe("completed");
    const verdicts = Object.fromEntries(report.results.map((r) => [`${r.group} ${r.lamp}`, r.verdict]));
    expect(verdicts["S yellow"]).toBe("no-current");
    expect(Object.entries(verdicts).filter(([, v]) => v !== "ok")).toEqual([["S yellow", "no-current"]]);
    expect(report.message).toContain("1 not ok");
  });

  it("latches a fault on a crossed channel (another head's green lit with S's) and ends in fault flash", () => {
    const x = inFlash();
    x.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    // Whenever S's green is lit, M's green lights too.
    const crossed = (written: readonly Lamps[]) =>
      written.map((l, i) => (i === 0 && written[1]?.green ? { ...l, green: true } : l));
    runTest(x, 600_000, { field: crossed });
    expect(x.mode).toBe("fault");
    expect(x.state.mon.latch?.kind).toMatch(/observed-conflict|feedback-mismatch/);
    const report = lampTestReport(x.state.lamp!, intersection);
    expect(report.state).toBe("fault");
    expect(report.results.at(-1)).toMatchObject({
      group: "S",
      lamp: "green",
      verdict: "other-lamp-lit",
      others: ["M green"],
    });
    expect(report.message).toMatch(/^ended by a fault/);
  });

  it("aborted during a green, ends it through its minimum, yellow and red clearance, then shows flash", () => {
    const x = inFlash();
    x.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    const oracle = new SafetyOracle(intersection);
    let aborted = false;
    const run = runTest(x, 600_000, {
      oracle,
      at: () => {
        if (!aborted && x.lastAspects[0] === "green") {
          aborted = true;
          x.dispatch({ type: "abort-lamp-test", by: "boss" });
        }
      },
    });
    expect(run.violation).toBeNull();
    const report = lampTestReport(x.state.lamp!, intersection);
    expect(report).toMatchObject({ state: "aborted" });
    expect(report.results.map((r) => `${r.group} ${r.lamp}`)).toEqual(["M red", "M yellow", "M green"]);
    expect(report.message).toMatch(/^aborted by boss \(lamp-test --abort\): 3 of 10 lamps tested/);
    expect(x.lastAspects).toEqual(flashPicture(intersection));
  });

  it("leaving flash meanwhile aborts it, and the intersection leaves flash once the lamp is cleared", () => {
    const x = inFlash();
    x.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    const oracle = new SafetyOracle(intersection);
    let left = false;
    runTest(x, 600_000, {
      oracle,
      at: () => {
        if (!left && x.lastAspects[1] === "green") {
          left = true;
          x.dispatch({ type: "leave-flash" });
        }
      },
    });
    expect(x.state.lamp?.end).toMatchObject({ kind: "aborted", why: "leave-flash" });
    for (let i = 0; i < 200; i++) {
      x.tick(TICK_MS);
      expect(oracle.observe(x.lastAspects, x.monoMs)).toBeNull();
    }
    expect(x.mode).not.toBe("flash");
    expect(x.mode).not.toBe("fault");
  });

  it("a stop meanwhile ends the lamp under test through its clearances before the lamps are handed over", () => {
    const x = inFlash();
    x.dispatch({ type: "lamp-test", id: "c1", by: "tech", stepMs: 2000 });
    const oracle = new SafetyOracle(intersection);
    while (x.lastAspects[2] !== "walk") {
      x.tick(TICK_MS);
      expect(oracle.observe(x.lastAspects, x.monoMs)).toBeNull();
    }
    x.dispatch({ type: "stop" });
    const start = x.monoMs;
    while (!readyToStop(x.state)) {
      x.tick(TICK_MS);
      expect(oracle.observe(x.lastAspects, x.monoMs)).toBeNull();
      expect(x.monoMs - start).toBeLessThanOrEqual(stopBoundMs(intersection, TICK_MS) + 2 * TICK_MS);
    }
    expect(x.state.lamp?.end).toMatchObject({ kind: "aborted", why: "stop" });
    expect(
      x.lastAspects.every((a) => a === "red" || a === "dont-walk" || a === "red-flash" || a === "dark"),
    ).toBe(true);
  });

  it(
    "for random intersections, steps and aborts: never two conflicting lamps, every lamp visited once, always back to flash",
    { timeout: 120_000 },
    () => {
      fc.assert(
        fc.property(
          setupArb,
          fc.integer({ min: MIN_LAMP_STEP_MS / 100, max: MAX_LAMP_STEP_MS / 1000 }).map((n) => n * 100),
          fc.option(fc.integer({ min: 0, max: 400_000 })),
          fc.integer({ min: 0, max: 9 }),
          (setup, stepMs, abortAtMs, jitter) => {
            const x = new VirtualIntersection(setup.intersection, setup.planA, {
              monoMs: 5_000,
              wallMs: 1_800_000_000_000,
            });
            x.tick(TICK_MS);
            x.dispatch({ type: "enter-flash" });
            for (let i = 0; i < 3000 && x.state.seq.mode !== "flash"; i++) x.tick(TICK_MS);
            x.tick(TICK_MS);
            expect(lampTestRefusal(x.state)).toBeNull();
            x.dispatch({ type: "lamp-test", id: "p", by: "prop", stepMs });
            const oracle = new SafetyOracle(setup.intersection);
            let aborted = false;
            const start = x.monoMs;
            const seen: LampChannel[] = [];
            while (x.state.lamp?.end === null) {
              const t = x.monoMs - start;
              if (abortAtMs !== null && !aborted && t >= abortAtMs) {
                aborted = true;
                x.dispatch({ type: "abort-lamp-test", by: "prop" });
              }
              // Ticks a little late now and then, as a loaded shell does.
              x.tick(TICK_MS + (t % 7 === 0 ? jitter : 0));
              const violation = oracle.observe(x.lastAspects, x.monoMs);
              if (violation) expect.fail(violation);
              if (x.state.lamp?.end === null)
                expect(activeGroups(x.lastAspects).length).toBeLessThanOrEqual(1);
              const current = x.state.lamp?.channels[x.state.lamp.index];
              if (
                current &&
                x.state.lamp?.end === null &&
                x.state.lamp.phase === "lit" &&
                seen.at(-1) !== current
              )
                seen.push(current);
              expect(x.monoMs - start).toBeLessThanOrEqual(
                lampTestBoundMs(setup.intersection, stepMs, TICK_MS + 9),
              );
            }
            expect(x.mode).toBe("flash");
            expect(x.lastAspects).toEqual(flashPicture(setup.intersection));
            const all = lampChannels(setup.intersection);
            const report = lampTestReport(x.state.lamp!, setup.intersection);
            // Each lamp lit once, in order; all of them unless aborted; every one read back lit.
            expect(seen).toEqual(all.slice(0, seen.length));
            expect(report.results.length).toBe(seen.length);
            if (!aborted) expect(seen.length).toBe(all.length);
            expect(report.results.every((r) => r.verdict === "ok")).toBe(true);
            // Two more ticks of flash: the monitor and the oracle accept the way back.
            for (let i = 0; i < 2; i++) {
              x.tick(TICK_MS);
              expect(oracle.observe(x.lastAspects, x.monoMs)).toBeNull();
            }
            expect(x.mode).toBe("flash");
          },
        ),
        { numRuns: 120 },
      );
    },
  );
});
