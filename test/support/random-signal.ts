import fc from "fast-check";
import type { Intersection, IntersectionPlan, SignalGroup } from "../../gateway/core/model.js";
import { type CorrectionSpec, compilePlan, type StageSpec, stageMinimums } from "../../gateway/core/plan.js";

/**
 * Random valid intersections and plans for property tests. Every generated plan compiles: the
 * generator builds stages from the permissive matrix and sizes splits above the stage minimums.
 */

export interface RandomSetup {
  readonly intersection: Intersection;
  readonly planA: IntersectionPlan;
  readonly planB: IntersectionPlan;
}

const ms = (min: number, max: number, step = 100) =>
  fc.integer({ min: min / step, max: max / step }).map((n) => n * step);

const groupArb = (kind: "vehicle" | "pedestrian", i: number): fc.Arbitrary<SignalGroup> =>
  kind === "vehicle"
    ? fc.record({
        id: fc.constant(`V${i}`),
        kind: fc.constant("vehicle" as const),
        minGoMs: ms(3000, 20_000),
        clearanceMs: ms(3000, 6000),
        redClearanceMs: ms(0, 6000),
        scheduledFlash: fc.constantFrom("red" as const, "yellow" as const),
      })
    : fc.record({
        id: fc.constant(`P${i}`),
        kind: fc.constant("pedestrian" as const),
        minGoMs: ms(7000, 15_000),
        clearanceMs: ms(3000, 20_000),
        redClearanceMs: ms(0, 3000),
        scheduledFlash: fc.constant("red" as const),
      });

/** A stage structure: each group joins the first stage it is permissive with, in a random order. */
function stagesFrom(
  permissive: readonly (readonly boolean[])[],
  order: readonly number[],
  overlap: readonly boolean[],
) {
  const stages: number[][] = [];
  for (const g of order) {
    const home = stages.find((st) => st.every((h) => permissive[g]?.[h]));
    if (home) home.push(g);
    else stages.push([g]);
  }
  if (stages.length === 1) {
    // A plan needs two stages: split the only one.
    const only = stages[0] as number[];
    stages.push(only.splice(0, Math.max(1, Math.floor(only.length / 2))));
    if (only.length === 0) only.push(...(stages[1] as number[]).slice(0, 1));
  }
  // Overlaps: a group may also run in the next stage when it is permissive with all of it.
  stages.forEach((st, k) => {
    const next = stages[(k + 1) % stages.length] as number[];
    for (const g of [...st]) {
      if (overlap[g] && !next.includes(g) && next.every((h) => permissive[g]?.[h])) next.push(g);
    }
  });
  return stages;
}

function buildPlan(
  intersection: Intersection,
  planId: string,
  stages: number[][],
  extrasMs: readonly number[],
  correction: CorrectionSpec,
  offsetFraction: number,
  coordinated: number,
  dailySyncMs: number,
): IntersectionPlan {
  const member = stages.map((st) => intersection.groups.map((_, gi) => st.includes(gi)));
  const mins = stageMinimums(
    intersection,
    member.map((m, k) => ({ id: `s${k}`, member: m })),
  );
  const splits = mins.map(
    (m, k) => Math.ceil((m.minMs + (extrasMs[k % extrasMs.length] ?? 0)) / 100) * 100 + 1000,
  );
  for (let attempt = 0; attempt < 200; attempt++) {
    const cycleMs = splits.reduce((a, b) => a + b, 0);
    const specs: StageSpec[] = stages.map((st, k) => ({
      id: `s${k}`,
      groups: st.map((g) => intersection.groups[g]?.id as string),
      splitMs: splits[k] as number,
    }));
    const compiled = compilePlan(
      intersection,
      { planId, version: 1, cycleMs, dailySyncMs },
      {
        offsetMs: Math.floor((offsetFraction * cycleMs) / 100) * 100,
        offsetReference: offsetFraction > 0.5 ? "end-of-green" : "start-of-green",
        coordinatedStage: `s${coordinated % stages.length}`,
        correction,
        stages: specs,
      },
    );
    if (compiled.ok) return compiled.value;
    // Too short a cycle, or too little slack for the correction: give the first stage more time.
    splits[attempt % splits.length] = (splits[attempt % splits.length] as number) + 5000;
  }
  throw new Error(`generator could not build a valid plan ${planId}`);
}

const correctionArb: fc.Arbitrary<CorrectionSpec> = fc.oneof(
  fc.record({ mode: fc.constant("dwell" as const), maxDwellPercent: fc.integer({ min: 10, max: 50 }) }),
  fc.record({
    mode: fc.constant("shortway" as const),
    maxLengthenPercent: fc.integer({ min: 8, max: 30 }),
    maxShortenPercent: fc.integer({ min: 8, max: 25 }),
  }),
);

export const setupArb: fc.Arbitrary<RandomSetup> = fc
  .record({
    vehicles: fc.integer({ min: 2, max: 6 }),
    pedestrians: fc.integer({ min: 0, max: 3 }),
  })
  .chain(({ vehicles, pedestrians }) => {
    const n = vehicles + pedestrians;
    return fc.record({
      groups: fc.tuple(
        ...Array.from({ length: n }, (_, i) => groupArb(i < vehicles ? "vehicle" : "pedestrian", i)),
      ),
      pairs: fc.array(
        fc.integer({ min: 0, max: 2 }).map((v) => v > 0),
        {
          minLength: (n * (n - 1)) / 2,
          maxLength: (n * (n - 1)) / 2,
        },
      ),
      orderA: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      orderB: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      overlapA: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      overlapB: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      extrasA: fc.array(ms(0, 30_000), { minLength: 1, maxLength: 6 }),
      extrasB: fc.array(ms(0, 30_000), { minLength: 1, maxLength: 6 }),
      correctionA: correctionArb,
      correctionB: correctionArb,
      offsetA: fc.double({ min: 0, max: 0.99, noNaN: true }),
      offsetB: fc.double({ min: 0, max: 0.99, noNaN: true }),
      coordinatedA: fc.nat(5),
      coordinatedB: fc.nat(5),
      dailySyncMs: ms(0, 86_000_000, 1000),
    });
  })
  .map((r) => {
    const n = r.groups.length;
    const permissive = Array.from({ length: n }, () => Array<boolean>(n).fill(false));
    let p = 0;
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) {
        const allowed = r.pairs[p++] === true;
        (permissive[a] as boolean[])[b] = allowed;
        (permissive[b] as boolean[])[a] = allowed;
      }
    }
    // Groups that flash yellow must be permissive with one another (the config loader insists too).
    const yellow: number[] = [];
    const groups = r.groups.map((g, gi) => {
      if (g.scheduledFlash !== "yellow") return g;
      if (yellow.every((h) => permissive[gi]?.[h])) {
        yellow.push(gi);
        return g;
      }
      return { ...g, scheduledFlash: "red" as const };
    });
    const intersection: Intersection = {
      id: "x",
      name: "random",
      corridorId: "c",
      groups,
      permissive,
      startupFlashMs: 6000,
      startupAllRedMs: Math.max(4000, ...r.groups.map((g) => g.redClearanceMs)),
      flashPeriodMs: 1100,
      monitor: { conflictMs: 300, redFailMs: 800, mismatchMs: 1000 },
    };
    const planA = buildPlan(
      intersection,
      "A",
      stagesFrom(permissive, r.orderA, r.overlapA),
      r.extrasA,
      r.correctionA,
      r.offsetA,
      r.coordinatedA,
      r.dailySyncMs,
    );
    const planB = buildPlan(
      intersection,
      "B",
      stagesFrom(permissive, r.orderB, r.overlapB),
      r.extrasB,
      r.correctionB,
      r.offsetB,
      r.coordinatedB,
      r.dailySyncMs,
    );
    return { intersection, planA, planB };
  });
