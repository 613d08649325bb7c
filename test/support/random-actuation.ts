import fc from "fast-check";
import {
  type Detector,
  IN_STEP_TOLERANCE_MS,
  type Intersection,
  type IntersectionPlan,
  type RecallMode,
  type Stage,
  type StageActuation,
} from "../../gateway/core/model.js";
import {
  actuatedStageMinimums,
  type CorrectionSpec,
  compilePlan,
  type PlanPartSpec,
} from "../../gateway/core/plan.js";
import { mulberry32 } from "../../simulators/traffic/mulberry32.js";
import { setupArb } from "./random-signal.js";

/**
 * Random actuated-coordinated variants of setupArb's intersections and plans, and scripted detector
 * inputs to drive them with.
 *
 * The variant is built WITHOUT recompiling: the compiled plan is kept and every non-coordinated stage
 * gets an `actuation`; the intersection gets one vehicle detector per vehicle group (calls and extends
 * that group) and one push button per pedestrian group (calls it). Detector i therefore belongs to
 * group i. The minimum green is at most the smallest minimum green of the stage's vehicle groups, but
 * that alone does not keep `Stage.minMs` what compilePlan gives: actuation raises minimums (plan.ts's
 * actuatedStageMinimums, which sets them here too), and a stage whose actuation the splits cannot hold
 * stays fixed-time inside the actuated plan (a valid plan too). `recompiled` rebuilds the spec, so a
 * test checks that compilePlan makes the very same plan of it.
 *
 * Readings are generated tick by tick from a small seeded PRNG per detector, with a behaviour drawn per
 * scenario (no per-tick arrays).
 */

export type Behaviour =
  | { readonly kind: "quiet" }
  /** Flips with this probability at every reading. */
  | { readonly kind: "random"; readonly flip: number }
  /** On from `fromMs` (after start) on, for good. */
  | { readonly kind: "stuck"; readonly fromMs: number }
  /** Flips at every reading. */
  | { readonly kind: "chatter" }
  /** Behaves as `before` until `fromMs`, then gives no reading (null) until `untilMs` (or for good). */
  | {
      readonly kind: "silent";
      readonly before: number;
      readonly fromMs: number;
      readonly untilMs: number | null;
    };

export interface DetectorScript {
  readonly behaviour: Behaviour;
  readonly seed: number;
}

export interface StageActuationDraw {
  /** Fractions in [0, 1) that pick each value within its range (the ranges depend on the stage). */
  readonly minGreen: number;
  readonly passage: number;
  readonly maxGreen: number;
  readonly recall: RecallMode;
  readonly pedestrianRecall: boolean;
}

export interface DetectorDraw {
  readonly delayMs: number;
  readonly extendMs: number;
  readonly locking: boolean;
  readonly failedRecall: "min" | "max";
  readonly chatterPerMinute: number;
  readonly maxPresenceMs: number;
}

export interface ActuatedSetup {
  /** setupArb's intersection with the detectors. */
  readonly intersection: Intersection;
  /** planA, actuated. */
  readonly planA: IntersectionPlan;
  /** planB, actuated or left fixed-time. */
  readonly planB: IntersectionPlan;
  readonly scripts: readonly DetectorScript[];
}

export interface ActuationOptions {
  /** Random detector delays (0–3 s) instead of 0: for the safety-only property. */
  readonly delays?: boolean;
  /** Diagnostics as the brief draws them; false: every check off (a detector then never fails on its own). */
  readonly diagnostics?: boolean;
  /** The behaviours to draw per detector. */
  readonly behaviour?: fc.Arbitrary<Behaviour>;
  /** Stage recalls: random (none/min/max, pedestrianRecall random) or all none/false. */
  readonly recalls?: "random" | "none";
  /** Whether planB is made actuated too (random by default). */
  readonly planBActuated?: boolean | "random";
  /** Locking memory: random by default. */
  readonly locking?: boolean | "random";
}

const ms = (min: number, max: number, step = 100) =>
  fc.integer({ min: Math.ceil(min / step), max: Math.floor(max / step) }).map((n) => n * step);

/** Every behaviour, including inputs that change every tick and inputs that fail. */
export const anyBehaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  { arbitrary: fc.constant({ kind: "quiet" as const }), weight: 2 },
  {
    arbitrary: fc
      .double({ min: 0.01, max: 0.5, noNaN: true })
      .map((flip) => ({ kind: "random" as const, flip })),
    weight: 4,
  },
  { arbitrary: ms(0, 600_000, 1000).map((fromMs) => ({ kind: "stuck" as const, fromMs })), weight: 1 },
  { arbitrary: fc.constant({ kind: "chatter" as const }), weight: 1 },
  {
    arbitrary: fc
      .record({
        before: fc.double({ min: 0, max: 0.3, noNaN: true }),
        fromMs: ms(0, 900_000, 1000),
        forMs: fc.option(ms(1000, 300_000, 1000), { nil: null }),
      })
      .map(({ before, fromMs, forMs }) => ({
        kind: "silent" as const,
        before,
        fromMs,
        untilMs: forMs === null ? null : fromMs + forMs,
      })),
    weight: 1,
  },
);

/** Healthy inputs only: quiet, or random flips (never stuck for long, never silent). */
export const healthyBehaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  { arbitrary: fc.constant({ kind: "quiet" as const }), weight: 1 },
  {
    arbitrary: fc
      .double({ min: 0.01, max: 0.5, noNaN: true })
      .map((flip) => ({ kind: "random" as const, flip })),
    weight: 3,
  },
);

const stageDrawArb = (recalls: "random" | "none"): fc.Arbitrary<StageActuationDraw> =>
  fc.record({
    minGreen: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    passage: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    maxGreen: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    recall:
      recalls === "none"
        ? fc.constant("none" as const)
        : fc.constantFrom("none" as const, "min" as const, "max" as const),
    pedestrianRecall: recalls === "none" ? fc.constant(false) : fc.boolean(),
  });

const detectorDrawArb = (options: ActuationOptions): fc.Arbitrary<DetectorDraw> =>
  fc.record({
    delayMs: options.delays ? fc.oneof(fc.constant(0), ms(100, 3000)) : fc.constant(0),
    extendMs: ms(0, 2000),
    locking:
      options.locking === undefined || options.locking === "random"
        ? fc.boolean()
        : fc.constant(options.locking),
    failedRecall: fc.constantFrom("min" as const, "max" as const),
    chatterPerMinute:
      options.diagnostics === false
        ? fc.constant(0)
        : fc.oneof(fc.constant(0), fc.integer({ min: 20, max: 120 })),
    maxPresenceMs:
      options.diagnostics === false ? fc.constant(0) : fc.oneof(fc.constant(0), ms(30_000, 120_000, 1000)),
  });

/** A value in [min, max] (whole 100 ms) picked by a fraction in [0, 1). */
function pick(fraction: number, min: number, max: number): number {
  const lo = Math.ceil(min / 100);
  const hi = Math.max(lo, Math.floor(max / 100));
  return (lo + Math.floor(fraction * (hi - lo + 1))) * 100;
}

/** The actuation a draw gives a stage (minimum green at most the smallest minimum green of its vehicle groups). */
export function stageActuation(
  intersection: Intersection,
  stage: Stage,
  draw: StageActuationDraw,
): StageActuation {
  const vehicleMinGo = stage.groups
    .map((g) => intersection.groups[g])
    .filter((g) => g?.kind === "vehicle")
    .map((g) => g?.minGoMs as number);
  const minGreenCap = vehicleMinGo.length > 0 ? Math.min(...vehicleMinGo) : 5000;
  const minGreenMs = pick(draw.minGreen, 1000, Math.max(1000, minGreenCap));
  const maxGreenMs = pick(draw.maxGreen, minGreenMs, stage.splitMs);
  const passageMs = pick(draw.passage, 0, Math.min(5000, maxGreenMs));
  return { minGreenMs, passageMs, maxGreenMs, recall: draw.recall, pedestrianRecall: draw.pedestrianRecall };
}

/**
 * `plan` with actuation on every non-coordinated stage that takes it, the compiled plan kept. Every
 * stage's `minMs` becomes what compilePlan gives the actuated plan (plan.ts's actuatedStageMinimums:
 * an actuated stage's vehicle groups' full minimum green and clearances, and a fixed stage's groups that
 * an actuated neighbour may not show); a stage whose actuation would leave some split short of its
 * minimum, or the plan too little slack for its correction, stays fixed-time.
 */
export function actuatedPlan(
  intersection: Intersection,
  plan: IntersectionPlan,
  draws: readonly StageActuationDraw[],
): IntersectionPlan {
  const mustShortenMs =
    (plan.correction.mode === "shortway" ? plan.correction.maxShortenMs : 0) + IN_STEP_TOLERANCE_MS;
  /** The stages' minimums with these actuations, or null if the plan would not compile. */
  const minimumsWith = (actuations: readonly (StageActuation | undefined)[]): number[] | null => {
    const mins = actuatedStageMinimums(intersection, plan.stages, actuations).map((m) => m.minMs);
    const slackMs = plan.stages.reduce((sum, st, k) => sum + st.splitMs - (mins[k] as number), 0);
    const fits = plan.stages.every((st, k) => st.splitMs >= (mins[k] as number));
    return fits && slackMs >= mustShortenMs ? mins : null;
  };
  let actuations: (StageActuation | undefined)[] = plan.stages.map(() => undefined);
  let minimums = plan.stages.map((st) => st.minMs);
  plan.stages.forEach((stage, k) => {
    if (k === plan.coordinatedStage) return;
    const candidate = [...actuations];
    candidate[k] = stageActuation(intersection, stage, draws[k % draws.length] as StageActuationDraw);
    const mins = minimumsWith(candidate);
    if (mins === null) return;
    actuations = candidate;
    minimums = mins;
  });
  const stages = plan.stages.map((stage, k) => {
    const actuation = actuations[k];
    return { ...stage, minMs: minimums[k] as number, ...(actuation ? { actuation } : {}) };
  });
  return { ...plan, stages };
}

/** One detector per group: a vehicle detector calling and extending a vehicle group, a push button calling a walk. */
export function detectorsFor(intersection: Intersection, draws: readonly DetectorDraw[]): Detector[] {
  return intersection.groups.map((group, g) => {
    const d = draws[g % draws.length] as DetectorDraw;
    const vehicle = group.kind === "vehicle";
    return {
      id: vehicle ? `D${g}` : `PB${g}`,
      kind: vehicle ? "vehicle" : "pedestrian",
      calls: [g],
      extends: vehicle ? [g] : [],
      delayMs: d.delayMs,
      extendMs: vehicle ? d.extendMs : 0,
      locking: d.locking,
      failedRecall: d.failedRecall,
      noActivityMs: 0,
      maxPresenceMs: d.maxPresenceMs,
      chatterPerMinute: d.chatterPerMinute,
      number: g + 1,
    };
  });
}

/**
 * The plan part spec a compiled plan was made from (the correction's percentages found back from its
 * milliseconds), with its stages' actuation: compilePlan of it must give the very same plan.
 */
export function planSpecOf(intersection: Intersection, plan: IntersectionPlan): PlanPartSpec {
  const percentFor = (valueMs: number) => {
    for (let p = 1; p <= 100; p++) if (Math.round((plan.cycleMs * p) / 100) === valueMs) return p;
    throw new Error(`no whole percentage of ${plan.cycleMs} ms is ${valueMs} ms`);
  };
  const c = plan.correction;
  const correction: CorrectionSpec =
    c.mode === "dwell"
      ? { mode: "dwell", maxDwellPercent: percentFor(c.maxDwellMs) }
      : {
          mode: "shortway",
          maxLengthenPercent: percentFor(c.maxLengthenMs),
          maxShortenPercent: percentFor(c.maxShortenMs),
        };
  return {
    offsetMs: plan.offsetMs,
    offsetReference: plan.offsetReference,
    coordinatedStage: (plan.stages[plan.coordinatedStage] as Stage).id,
    correction,
    stages: plan.stages.map((s) => ({
      id: s.id,
      groups: s.groups.map((g) => intersection.groups[g]?.id as string),
      splitMs: s.splitMs,
      ...(s.actuation ? { actuated: s.actuation } : {}),
    })),
  };
}

/** compilePlan of planSpecOf(plan): the plan a valid plan file with the same content would give. */
export function recompiled(intersection: Intersection, plan: IntersectionPlan) {
  return compilePlan(
    intersection,
    { planId: plan.planId, version: plan.version, cycleMs: plan.cycleMs, dailySyncMs: plan.dailySyncMs },
    planSpecOf(intersection, plan),
  );
}

export function actuatedSetupArb(options: ActuationOptions = {}): fc.Arbitrary<ActuatedSetup> {
  const recalls = options.recalls ?? "random";
  return setupArb.chain((base) => {
    const n = base.intersection.groups.length;
    return fc
      .record({
        stagesA: fc.array(stageDrawArb(recalls), {
          minLength: base.planA.stages.length,
          maxLength: base.planA.stages.length,
        }),
        stagesB: fc.array(stageDrawArb(recalls), {
          minLength: base.planB.stages.length,
          maxLength: base.planB.stages.length,
        }),
        planBActuated:
          options.planBActuated === undefined || options.planBActuated === "random"
            ? fc.boolean()
            : fc.constant(options.planBActuated),
        detectors: fc.array(detectorDrawArb(options), { minLength: n, maxLength: n }),
        scripts: fc.array(
          fc.record({
            behaviour: options.behaviour ?? anyBehaviour,
            seed: fc.integer({ min: 1, max: 0x7fff_ffff }),
          }),
          { minLength: n, maxLength: n },
        ),
      })
      .map((r) => {
        const intersection: Intersection = {
          ...base.intersection,
          detectors: detectorsFor(base.intersection, r.detectors),
        };
        const planA = actuatedPlan(intersection, base.planA, r.stagesA);
        const planB = r.planBActuated ? actuatedPlan(intersection, base.planB, r.stagesB) : base.planB;
        return { intersection, planA, planB, scripts: r.scripts };
      });
  });
}

/** The detector inputs of a scenario, one reading per detector and tick. */
export class ScriptedInputs {
  private readonly random: (() => number)[];
  private readonly on: boolean[];

  constructor(private readonly scripts: readonly DetectorScript[]) {
    this.random = scripts.map((s) => mulberry32(s.seed));
    this.on = scripts.map(() => false);
  }

  /** The readings at `elapsedMs` after the start (call once per tick, in time order). */
  read(elapsedMs: number): (boolean | null)[] {
    return this.scripts.map((script, i) => {
      const b = script.behaviour;
      const next = this.random[i] as () => number;
      const was = this.on[i] as boolean;
      let now = was;
      switch (b.kind) {
        case "quiet":
          now = false;
          break;
        case "random":
          if (next() < b.flip) now = !was;
          break;
        case "stuck":
          now = elapsedMs >= b.fromMs;
          break;
        case "chatter":
          now = !was;
          break;
        case "silent":
          if (elapsedMs >= b.fromMs && (b.untilMs === null || elapsedMs < b.untilMs)) return null;
          if (next() < b.before) now = !was;
          break;
      }
      this.on[i] = now;
      return now;
    });
  }
}

/**
 * Inputs that fail, and quiet ones: a stuck input, a chattering one, or one that stops answering (for
 * good) from some instant on; the others never come on. For the failed-detector property.
 */
export const failingOrQuiet: fc.Arbitrary<Behaviour> = fc.oneof(
  { arbitrary: fc.constant({ kind: "quiet" as const }), weight: 3 },
  { arbitrary: ms(0, 300_000, 1000).map((fromMs) => ({ kind: "stuck" as const, fromMs })), weight: 1 },
  { arbitrary: fc.constant({ kind: "chatter" as const }), weight: 1 },
  {
    arbitrary: ms(0, 300_000, 1000).map((fromMs) => ({
      kind: "silent" as const,
      before: 0,
      fromMs,
      untilMs: null,
    })),
    weight: 1,
  },
);

/**
 * The setup with each detector's diagnostics able to see its own failure: a chattering input's
 * detector counts chatter (20–120 per minute, its draw or 20), a stuck one's has a maximum presence
 * (30–120 s, its draw or 30 s). A silent input always fails (no reading for NO_READING_MS).
 */
export function diagnosable(setup: ActuatedSetup): ActuatedSetup {
  const detectors = (setup.intersection.detectors ?? []).map((d, i) => {
    const kind = setup.scripts[i]?.behaviour.kind;
    if (kind === "chatter" && d.chatterPerMinute === 0) return { ...d, chatterPerMinute: 20 };
    if (kind === "stuck" && d.maxPresenceMs === 0) return { ...d, maxPresenceMs: 30_000 };
    return d;
  });
  return { ...setup, intersection: { ...setup.intersection, detectors } };
}
