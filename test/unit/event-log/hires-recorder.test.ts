import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type HiResRecorderState,
  INITIAL_RECORDER,
  recordHiRes,
} from "../../../gateway/core/event-log/hires-recorder.js";
import { FlashStatus, type HiResEvent, IndianaCode } from "../../../gateway/core/event-log/indiana.js";
import { type Aspect, type Intersection, type Lamps, phaseNumber } from "../../../gateway/core/model.js";
import { flashStatus } from "../../../gateway/node/hires-log.js";
import { VirtualIntersection } from "../../support/drive.js";
import { setupArb } from "../../support/random-signal.js";

/** Runs a controller on a virtual clock and the recorder on every output it writes, as the gateway does. */
function runLogged(
  intersection: Intersection,
  v: VirtualIntersection,
  ticks: number,
  between?: (tick: number) => void,
  field?: (tick: number) => ((written: readonly Lamps[]) => readonly Lamps[]) | undefined,
): { events: HiResEvent[]; aspectsAt: { wallMs: number; aspects: readonly Aspect[] }[] } {
  let state: HiResRecorderState = INITIAL_RECORDER;
  const events: HiResEvent[] = [];
  const aspectsAt: { wallMs: number; aspects: readonly Aspect[] }[] = [];
  for (let t = 0; t < ticks; t++) {
    between?.(t);
    v.tick(100, field?.(t));
    const seq = v.state.seq;
    const step = recordHiRes(
      intersection,
      state,
      {
        aspects: v.lastAspects,
        intervals: seq.groups.map((g) => g.interval),
        flash: flashStatus(v.state.mon.latch !== null, seq.mode, false),
        plan: seq.plan,
        sequencing: v.state.mon.latch === null && seq.mode === "running",
        cycles: seq.cycles,
      },
      v.wallMs,
    );
    state = step.state;
    events.push(...step.events);
    aspectsAt.push({ wallMs: v.wallMs, aspects: v.lastAspects });
  }
  return { events, aspectsAt };
}

/** Each vehicle phase's rows must follow 1 → 7 → 8 → 9 → 10 → 11 → 1; each walk 21 → 22 → 23 → 21. */
const VEHICLE_NEXT: Record<number, number[]> = {
  [IndianaCode.PHASE_BEGIN_GREEN]: [IndianaCode.PHASE_GREEN_TERMINATION],
  [IndianaCode.PHASE_GREEN_TERMINATION]: [IndianaCode.PHASE_BEGIN_YELLOW_CLEARANCE],
  [IndianaCode.PHASE_BEGIN_YELLOW_CLEARANCE]: [IndianaCode.PHASE_END_YELLOW_CLEARANCE],
  [IndianaCode.PHASE_END_YELLOW_CLEARANCE]: [IndianaCode.PHASE_BEGIN_RED_CLEARANCE],
  [IndianaCode.PHASE_BEGIN_RED_CLEARANCE]: [IndianaCode.PHASE_END_RED_CLEARANCE],
  [IndianaCode.PHASE_END_RED_CLEARANCE]: [IndianaCode.PHASE_BEGIN_GREEN],
};
const PED_NEXT: Record<number, number[]> = {
  [IndianaCode.PEDESTRIAN_BEGIN_WALK]: [IndianaCode.PEDESTRIAN_BEGIN_CLEARANCE],
  [IndianaCode.PEDESTRIAN_BEGIN_CLEARANCE]: [IndianaCode.PEDESTRIAN_BEGIN_SOLID_DONT_WALK],
  [IndianaCode.PEDESTRIAN_BEGIN_SOLID_DONT_WALK]: [IndianaCode.PEDESTRIAN_BEGIN_WALK],
};

describe("the high-resolution event log recorder", () => {
  it("for any intersection and plan, every phase's rows follow the interval order, and every green on the lamps has its begin-green row at that instant", () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 0, max: 86_399 }), ({ intersection, planA }, startS) => {
        const start = { monoMs: 1_000_000, wallMs: Date.UTC(2026, 10, 30) + startS * 1000 };
        const v = new VirtualIntersection(intersection, planA, start);
        const ticks = Math.ceil(
          (intersection.startupFlashMs + intersection.startupAllRedMs + 3 * planA.cycleMs) / 100,
        );
        const { events, aspectsAt } = runLogged(intersection, v, ticks);
        // The grammar, per group (vehicle and pedestrian groups may share a phase number: keyed by kind).
        intersection.groups.forEach((group, i) => {
          const phase = phaseNumber(intersection, i);
          const next = group.kind === "vehicle" ? VEHICLE_NEXT : PED_NEXT;
          const codes = events
            .filter((e) => e.param === phase && next[e.code] !== undefined)
            .map((e) => e.code);
          for (let k = 1; k < codes.length; k++)
            expect(next[codes[k - 1] as number], `${group.id}: ${codes.join(" ")}`).toContain(codes[k]);
        });
        // Every green (or walk) that begins on the lamps has its row at the same (rounded) instant.
        intersection.groups.forEach((group, i) => {
          const go = group.kind === "vehicle" ? "green" : "walk";
          const code =
            group.kind === "vehicle" ? IndianaCode.PHASE_BEGIN_GREEN : IndianaCode.PEDESTRIAN_BEGIN_WALK;
          const starts = aspectsAt
            .filter((a, k) => a.aspects[i] === go && aspectsAt[k - 1]?.aspects[i] !== go)
            .map((a) => Math.round(a.wallMs / 100) * 100);
          const rows = events.filter((e) => e.code === code && e.param === phaseNumber(intersection, i));
          expect(rows.map((e) => e.atMs)).toEqual(starts);
        });
        // Timestamps: to 0.1 s, never going back.
        for (let k = 0; k < events.length; k++) {
          expect((events[k] as HiResEvent).atMs % 100).toBe(0);
          if (k > 0)
            expect((events[k] as HiResEvent).atMs).toBeGreaterThanOrEqual((events[k - 1] as HiResEvent).atMs);
        }
        // Start-up: flash status 7, then out of flash (2), then the plan (131, 132, 133).
        expect(
          events.filter((e) => e.code === IndianaCode.UNIT_FLASH_STATUS_CHANGE).map((e) => e.param),
        ).toEqual([FlashStatus.STARTUP, FlashStatus.NOT_FLASH]);
        const planRows = events.filter((e) => e.code >= 131 && e.code <= 133);
        expect(planRows.map((e) => e.code)).toEqual([131, 132, 133]);
        expect(planRows[1]?.param).toBe(Math.min(255, Math.round(planA.cycleMs / 1000)));
        // Cycle boundaries: one per cycle the sequencer counted after the first.
        const boundaries = events.filter((e) => e.code === IndianaCode.COORD_CYCLE_STATE_CHANGE).length;
        expect(boundaries).toBe(
          Math.max(0, v.state.seq.cycles - (events.length > 0 ? firstCycles(intersection, planA, start) : 0)),
        );
      }),
      { numRuns: 40 },
    );
  });

  it("a plan change writes 131, 132 and 133 with the new plan's pattern, cycle and offset at the boundary it takes effect", () => {
    fc.assert(
      fc.property(setupArb, ({ intersection, planA, planB }) => {
        const start = { monoMs: 1_000_000, wallMs: Date.UTC(2026, 10, 30, 6) };
        const v = new VirtualIntersection(intersection, planA, start);
        const patterned = { ...planB, version: planA.version + 1, pattern: 7 };
        const warmup = Math.ceil(
          (intersection.startupFlashMs + intersection.startupAllRedMs + planA.cycleMs) / 100,
        );
        const ticks = warmup + Math.ceil((4 * Math.max(planA.cycleMs, planB.cycleMs)) / 100);
        const { events } = runLogged(intersection, v, ticks, (t) => {
          if (t === warmup)
            v.dispatch({ type: "schedule-plan", plan: patterned, activationWallMs: v.wallMs + 1000 });
        });
        const changes = events.filter((e) => e.code === IndianaCode.COORD_PATTERN_CHANGE);
        if (v.state.seq.plan.version !== patterned.version) return; // not taken within the run: nothing to check
        expect(changes.map((e) => e.param)).toEqual([0, 7]);
        const at = (changes[1] as HiResEvent).atMs;
        const sameInstant = events.filter((e) => e.atMs === at && e.code >= 131 && e.code <= 133);
        expect(sameInstant.map((e) => [e.code, e.param])).toEqual([
          [131, 7],
          [132, Math.min(255, Math.round(planB.cycleMs / 1000))],
          [133, Math.min(255, Math.round(planB.offsetMs / 1000))],
        ]);
      }),
      { numRuns: 25 },
    );
  });

  it("an operator's flash is 173 with local manual (4), a latched fault 173 with fault monitor (5), and a green cut by it still ends (7)", () => {
    fc.assert(
      fc.property(setupArb, ({ intersection, planA }) => {
        const start = { monoMs: 1_000_000, wallMs: Date.UTC(2026, 10, 30, 6) };
        const v = new VirtualIntersection(intersection, planA, start);
        const warmup = Math.ceil(
          (intersection.startupFlashMs + intersection.startupAllRedMs + planA.cycleMs / 2) / 100,
        );
        const faultAt = warmup + Math.ceil((3 * planA.cycleMs) / 100);
        // Flash is entered through the clearances (up to a minimum, a clearance and a red clearance):
        // it is left once it has shown for two seconds, whenever that is.
        let flashTicks = 0;
        // Then every lamp of the field lit at once from faultAt on: the monitor latches a fault.
        const allLit = () => intersection.groups.map(() => ({ red: true, yellow: true, green: true }));
        const { events } = runLogged(
          intersection,
          v,
          faultAt + 50,
          (t) => {
            if (t === warmup) v.dispatch({ type: "enter-flash" });
            if (v.state.seq.mode === "flash" && ++flashTicks === 20) v.dispatch({ type: "leave-flash" });
          },
          (t) => (t >= faultAt ? allLit : undefined),
        );
        const flashes = events
          .filter((e) => e.code === IndianaCode.UNIT_FLASH_STATUS_CHANGE)
          .map((e) => e.param);
        expect(flashes.slice(0, 2)).toEqual([FlashStatus.STARTUP, FlashStatus.NOT_FLASH]);
        expect(flashes).toContain(FlashStatus.LOCAL_MANUAL);
        expect(v.state.mon.latch).not.toBeNull();
        expect(flashes.at(-1)).toBe(FlashStatus.FAULT_MONITOR);
        // Every begin green is ended before the next one of that phase, whatever happened in between.
        intersection.groups.forEach((group, i) => {
          if (group.kind !== "vehicle") return;
          const phase = phaseNumber(intersection, i);
          let open = false;
          for (const e of events.filter((r) => r.param === phase)) {
            if (e.code === IndianaCode.PHASE_BEGIN_GREEN) {
              expect(open).toBe(false);
              open = true;
            }
            if (e.code === IndianaCode.PHASE_GREEN_TERMINATION) open = false;
          }
        });
      }),
      { numRuns: 25 },
    );
    expect(flashStatus(true, "running", false)).toBe(FlashStatus.FAULT_MONITOR);
    expect(flashStatus(false, "flash", true)).toBe(FlashStatus.AUTOMATIC);
  });
});

/** The sequencer's cycle count when it first runs the plan (the recorder's first boundary is the next). */
function firstCycles(
  intersection: Intersection,
  plan: Parameters<typeof recordHiRes>[2]["plan"],
  start: { monoMs: number; wallMs: number },
): number {
  const v = new VirtualIntersection(intersection, plan, start);
  for (let t = 0; t < 10_000 && v.state.seq.mode !== "running"; t++) v.tick(100);
  return v.state.seq.cycles;
}
