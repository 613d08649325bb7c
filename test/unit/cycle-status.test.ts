import { describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { cyclePosition } from "../../gateway/core/cycle-position.js";
import { CycleStatusReader } from "../../gateway/node/cycle-status.js";
import { sequencerMetricSources } from "../../gateway/node/runner-hooks.js";
import { type CycleStatus, cycleStatusSchema } from "../../gateway/protocol/messages.js";
import { VirtualIntersection } from "../support/drive.js";
import { withoutActuation } from "../support/fixture-intersection.js";

const elm = loadIntersectionSetup("config/intersections/elm.yaml");
// off-peak at elm, fixed-time: 80 s cycle (main 46 s, side 34 s), dwell up to 20 s; daily sync 02:00 UTC.
const SYNC = Date.UTC(2026, 0, 5, 2, 0, 0);

/**
 * Starts elm so that its first cycle begins on its offset point, 10 s in (after the start-up), then steps
 * the wall clock 30 s ahead during that cycle: the second cycle starts 30 s late.
 */
function lateElm() {
  const x = new VirtualIntersection(elm.intersection.intersection, withoutActuation(elm.initialPlan), {
    monoMs: 5_000,
    wallMs: SYNC - 10_000,
  });
  const tick = x.tick.bind(x);
  let stepped = false;
  x.tick = (advanceMs, observed) => {
    tick(advanceMs, observed);
    if (!stepped && x.monoMs >= 5_000 + 20_000) {
      stepped = true;
      x.wallMs += 30_000;
    }
  };
  return x;
}

describe("the status's cycle", () => {
  it("is null until a plan runs, then names the stage, the cycle's start, its corrected length and offset error", () => {
    const x = lateElm();
    const reader = new CycleStatusReader();
    const seen: (CycleStatus | null)[] = [];
    for (let t = 0; t < 10_000 + 80_000 + 2 * 100_000; t += 100) {
      x.tick(100);
      seen.push(reader.read(x.state.seq, x.now));
    }
    const first = seen.findIndex((c) => c !== null);
    expect(first).toBe(99); // the tick at 10 s: start-up flash and all-red before it
    expect(seen.slice(0, first).every((c) => c === null)).toBe(true);
    const cycleStarts = x.signals.filter((s) => s.event.type === "cycle-start");
    const c0 = seen[first] as CycleStatus;
    expect(cycleStatusSchema.parse(c0)).toEqual(c0);
    // Entered on its offset point: in step from the first cycle.
    expect(c0).toEqual({
      stage: "main",
      startedAt: new Date(cycleStarts[0]?.now.wallMs as number).toISOString(),
      lengthMs: 80_000,
      offsetErrorMs: 0,
      inStep: true,
    });
    // The clock stepped 30 s ahead: the second cycle is 30 s late, and dwell lengthens its main stage by
    // its 20 s limit.
    const c1 = seen[first + 800] as CycleStatus;
    expect(c1).toEqual({
      stage: "main",
      startedAt: new Date(cycleStarts[1]?.now.wallMs as number).toISOString(),
      lengthMs: 100_000,
      offsetErrorMs: 30_000,
      inStep: false,
    });
    // Then the side stage, in the same cycle: only the stage changed.
    const side = seen.slice(first + 800).find((c) => c?.stage === "side");
    expect(side).toEqual({ ...c1, stage: "side" });
    // The next cycle starts 100 s after it: 30 s late was 50 s early of the next offset point;
    // 20 s of it were dwelled, 30 s are left.
    const c2 = seen[first + 800 + 1000] as CycleStatus;
    expect(Date.parse(c2.startedAt) - Date.parse(c1.startedAt)).toBe(100_000);
    expect(c2.offsetErrorMs).toBe(-(80_000 - 30_000) + 20_000);
    expect(c2.startedAt).toBe(new Date(cycleStarts[2]?.now.wallMs as number).toISOString());
  });

  it("changes only when the stage does, not at each tick: the status is published on change", () => {
    const x = lateElm();
    const reader = new CycleStatusReader();
    const published: string[] = [];
    let jitter = 0;
    for (let t = 0; t < 10_000 + 3 * 90_000; t += 100) {
      x.tick(100);
      // The wall clock and the monotonic clock are read one after the other: their difference wobbles.
      jitter = (jitter + 1) % 3;
      const key = JSON.stringify(reader.read(x.state.seq, { ...x.now, wallMs: x.now.wallMs + jitter - 1 }));
      if (key !== published.at(-1)) published.push(key);
    }
    const stageStarts = x.signals.filter((s) => s.event.type === "stage-start").length;
    // null at first, then one value per stage started: never one per tick.
    expect(published.length).toBe(1 + stageStarts);
  });

  it("puts the cycle's start where the stages' planned ends put it", () => {
    const x = lateElm();
    for (let t = 0; t < 10_000 + 80_000 + 46_000 + 20_000 + 5_000; t += 100) x.tick(100);
    const position = cyclePosition(x.state.seq);
    const start = x.signals.filter((s) => s.event.type === "cycle-start")[1]?.now.monoMs;
    expect(position).toMatchObject({ stage: "side", startedMonoMs: start, lengthMs: 100_000 });
  });
});

describe("the cycle's metrics (greenwave_cycle_second, greenwave_cycle_length_seconds)", () => {
  it("are absent until a plan runs, then count the seconds since the cycle began, within its corrected length", () => {
    const x = lateElm();
    const sources = sequencerMetricSources(
      () => x.state.seq,
      () => x.monoMs,
    );
    const seen: ({ secondsIn: number; lengthSeconds: number } | null)[] = [];
    for (let t = 0; t < 10_000 + 80_000 + 2 * 100_000; t += 100) {
      x.tick(100);
      seen.push(sources.cycle());
    }
    expect(seen.slice(0, 99).every((c) => c === null)).toBe(true);
    expect(seen[99]).toEqual({ secondsIn: 0, lengthSeconds: 80 });
    // 30 s into the first cycle; then the late second cycle, lengthened by dwell's 20 s.
    expect(seen[99 + 300]).toEqual({ secondsIn: 30, lengthSeconds: 80 });
    expect(seen[99 + 800 + 50]?.lengthSeconds).toBe(100);
    for (const c of seen.slice(99)) {
      expect(c).not.toBeNull();
      expect(c?.secondsIn).toBeGreaterThanOrEqual(0);
      expect(c?.secondsIn).toBeLessThan(c?.lengthSeconds as number);
    }
  });
});
