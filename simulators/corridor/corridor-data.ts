import { resolve } from "node:path";
import {
  compileIntersectionPlan,
  listPlanFiles,
  loadCorridor,
  loadIntersectionSetup,
  loadPlan,
} from "../../gateway/config/load.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import type { Intersection, IntersectionPlan } from "../../gateway/core/model.js";

/** A corridor's intersections and every plan compiled for each of them: the simulation's fixed input. */
export interface SimCorridor {
  readonly id: string;
  readonly dailySyncMs: number;
  /** In corridor order. */
  readonly ids: readonly string[];
  readonly intersections: ReadonlyMap<string, { intersection: Intersection; initialPlan: IntersectionPlan }>;
  readonly plans: ReadonlyMap<
    string,
    {
      version: number;
      /** The plan file's content digest, as `plan push` computes it (config/plan-digest.ts). */
      digest: string;
      cycleMs: number;
      parts: ReadonlyMap<string, IntersectionPlan>;
    }
  >;
}

const cache = new Map<string, SimCorridor>();

/** Loads and compiles once per file (the only I/O of a simulation, before it starts). */
export function loadSimCorridor(corridorFile: string): SimCorridor {
  const file = resolve(corridorFile);
  const cached = cache.get(file);
  if (cached) return cached;
  const corridor = loadCorridor(file);
  const ids = corridor.raw.intersections.map((i) => i.id);
  const intersections = new Map(
    ids.map((id) => {
      const setup = loadIntersectionSetup(corridor.intersectionFiles.get(id) as string);
      return [id, { intersection: setup.intersection.intersection, initialPlan: setup.initialPlan }] as const;
    }),
  );
  const plans = new Map(
    listPlanFiles(corridor).map((f) => {
      const plan = loadPlan(f);
      const parts = new Map(
        ids.map((id) => [
          id,
          compileIntersectionPlan(
            (intersections.get(id) as { intersection: Intersection }).intersection,
            plan,
            corridor,
          ),
        ]),
      );
      return [
        plan.raw.id,
        {
          version: plan.raw.version,
          digest: planDigest(plan.raw),
          cycleMs: Math.round(plan.raw.cycleSeconds * 1000),
          parts,
        },
      ] as const;
    }),
  );
  const loaded: SimCorridor = {
    id: corridor.raw.id,
    dailySyncMs: corridor.dailySyncMs,
    ids,
    intersections,
    plans,
  };
  cache.set(file, loaded);
  return loaded;
}
