import {
  loadCorridor,
  loadIntersection,
  loadPlan,
  planFileFor,
  planHeader,
  planPartSpec,
} from "../gateway/config/load.js";
import {
  type ControllerState,
  controllerMode,
  startController,
  stepController,
} from "../gateway/core/controller.js";
import type { Intersection, IntersectionPlan, Lamps } from "../gateway/core/model.js";
import { compilePlan } from "../gateway/core/plan.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * How long one second of lamp states takes to compute for a 64-intersection corridor: per intersection,
 * 10 ticks of 100 ms, each followed by the readback check, exactly as a gateway runs them.
 */
const INTERSECTIONS = 64;
const TICK_MS = 100;

function corridorOf64(): {
  intersection: Intersection;
  offPeak: IntersectionPlan;
  amPeak: IntersectionPlan;
}[] {
  const corridor = loadCorridor("config/corridor.yaml");
  const plans = ["off-peak", "am-peak"].map((id) => loadPlan(planFileFor(corridor, id)));
  const examples = [...corridor.intersectionFiles.values()].map(
    (file) => loadIntersection(file).intersection,
  );
  const out = [];
  for (let k = 0; k < INTERSECTIONS; k++) {
    const base = examples[k % examples.length] as Intersection;
    const intersection = { ...base, id: `${base.id}-${k}` };
    const [offPeak, amPeak] = plans.map((plan) => {
      const part = plan.raw.intersections[base.id];
      if (!part) throw new Error(`no part for ${base.id}`);
      // Spread the offsets along the corridor as a green wave would.
      const spec = planPartSpec({ ...part, offsetSeconds: (k * 7) % plan.raw.cycleSeconds });
      const compiled = compilePlan(intersection, planHeader(plan.raw, corridor.timeReference), spec);
      if (!compiled.ok) throw new Error(compiled.issues.map((i) => i.message).join("; "));
      return compiled.value;
    }) as [IntersectionPlan, IntersectionPlan];
    out.push({ intersection, offPeak, amPeak });
  }
  return out;
}

export function benchLampStates(): BenchResult {
  const setups = corridorOf64();
  let mono = 0;
  let wall = Date.UTC(2026, 10, 24, 6, 0, 0);
  let states: ControllerState[] = setups.map((s) =>
    startController(s.intersection, s.offPeak, null, { monoMs: mono, wallMs: wall }),
  );
  let writes = 0;
  const corridorSecond = () => {
    for (let t = 0; t < 1000; t += TICK_MS) {
      mono += TICK_MS;
      wall += TICK_MS;
      const now = { monoMs: mono, wallMs: wall };
      states = states.map((state) => {
        const ticked = stepController(state, { type: "tick" }, now);
        let lamps: readonly Lamps[] = [];
        for (const e of ticked.effects) {
          if (e.type === "write-outputs") {
            lamps = e.lamps;
            writes++;
          }
        }
        return stepController(ticked.state, { type: "readback", observed: lamps }, now).state;
      });
    }
  };
  for (let s = 0; s < 30; s++) corridorSecond(); // warm-up, through start-up
  const samples: number[] = [];
  const total = process.hrtime.bigint();
  for (let s = 0; s < 600; s++) {
    if (s === 300) {
      states = states.map((state, i) => {
        const plan = (setups[i] as (typeof setups)[number]).amPeak;
        return stepController(
          state,
          { type: "schedule-plan", plan, activationWallMs: wall + 20_000 },
          { monoMs: mono, wallMs: wall },
        ).state;
      });
    }
    const start = process.hrtime.bigint();
    corridorSecond();
    samples.push(elapsedMs(start) * 1000);
  }
  const totalMs = elapsedMs(total);
  const faulted = states.filter((s) => controllerMode(s) === "fault").length;
  if (faulted > 0)
    throw new Error(
      `${faulted} intersections latched a fault during the benchmark: the figures would be meaningless`,
    );
  const switched = states.filter((s) => s.seq.plan.planId === "am-peak").length;
  if (switched !== INTERSECTIONS)
    throw new Error(`only ${switched} of ${INTERSECTIONS} intersections switched plans`);
  const result = summarize("lamp-states: 1 s of a 64-intersection corridor", "µs", samples, {
    ticksPerCpuSecond: Math.round((600 * 10 * INTERSECTIONS) / (totalMs / 1000)),
    writes,
  });
  return {
    ...result,
    extra: { ...result.extra, shareOfRealTimeMedian: `${((result.median / 1e6) * 100).toFixed(3)} %` },
  };
}
