import { resolve } from "node:path";
import {
  compileIntersectionPlan,
  type IntersectionSetup,
  listPlanFiles,
  type LoadedCorridor,
  loadCorridor,
  loadIntersectionSetup,
  loadPlan,
  timeReferenceOf,
} from "../../gateway/config/load.js";
import { scheduleTimeZone } from "../../gateway/config/load-schedule.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import type { Intersection, IntersectionPlan } from "../../gateway/core/model.js";
import type { TimeReference } from "../../gateway/core/time/time-reference.js";

/** A corridor's intersections and every plan compiled for each of them: the simulation's fixed input. */
export interface SimCorridor {
  readonly id: string;
  readonly timeReference: TimeReference;
  /** The corridor file's `timeReference` as a schedule bundle carries it (config/schedule-bundle.ts). */
  readonly rawTimeReference: LoadedCorridor["raw"]["timeReference"];
  /** The zone its schedules run in: its `timeZone`, or the IANA zone of its fixed offset. */
  readonly scheduleZone: string;
  /** In corridor order. */
  readonly ids: readonly string[];
  readonly intersections: ReadonlyMap<
    string,
    {
      intersection: Intersection;
      initialPlan: IntersectionPlan;
      /** What a gateway of it loads (with this time reference): its plan check compiles schedules with it. */
      setup: IntersectionSetup;
    }
  >;
  readonly plans: ReadonlyMap<
    string,
    {
      version: number;
      /** The plan file's content digest, as `plan push` computes it (config/plan-digest.ts). */
      digest: string;
      cycleMs: number;
      /** The plan file's data, as a schedule bundle carries it. */
      raw: unknown;
      parts: ReadonlyMap<string, IntersectionPlan>;
    }
  >;
}

const cache = new Map<string, SimCorridor>();

/**
 * The corridor file with its time reference moved to an IANA zone (the sync point's local time kept):
 * what an operator's corridor file says once it names its zone, without a file per zone on disk.
 */
function inZone(corridor: LoadedCorridor, timeZone: string | null): LoadedCorridor {
  if (timeZone === null) return corridor;
  const rawTimeReference = { dailySync: corridor.raw.timeReference.dailySync, timeZone };
  const timeReference = timeReferenceOf(rawTimeReference);
  return {
    ...corridor,
    raw: { ...corridor.raw, timeReference: rawTimeReference },
    timeReference,
    dailySyncMs: timeReference.dailySyncMs,
  };
}

/**
 * Loads and compiles once per file and zone (the only I/O of a simulation, before it starts). `timeZone`:
 * the corridor as if its file named that zone; null, as the file says.
 */
export function loadSimCorridor(corridorFile: string, timeZone: string | null = null): SimCorridor {
  const file = resolve(corridorFile);
  const key = `${file}\n${timeZone ?? ""}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const corridor = inZone(loadCorridor(file), timeZone);
  const zone = scheduleTimeZone(corridor);
  if (!zone.ok) throw new Error(`${file}: ${zone.issue.message}`);
  const ids = corridor.raw.intersections.map((i) => i.id);
  const loaded = new Map(
    ids.map((id) => [id, loadIntersectionSetup(corridor.intersectionFiles.get(id) as string)] as const),
  );
  const plans = new Map(
    listPlanFiles(corridor).map((f) => {
      const plan = loadPlan(f);
      const parts = new Map(
        ids.map((id) => [
          id,
          compileIntersectionPlan(
            (loaded.get(id) as IntersectionSetup).intersection.intersection,
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
          raw: plan.raw,
          parts,
        },
      ] as const;
    }),
  );
  const intersections = new Map(
    ids.map((id) => {
      const setup = loaded.get(id) as IntersectionSetup;
      // The initial plan compiled with this corridor's time reference (the file's may have none).
      const initialPlan = plans.get(setup.intersection.raw.initialPlan)?.parts.get(id) ?? setup.initialPlan;
      return [
        id,
        {
          intersection: setup.intersection.intersection,
          initialPlan,
          setup: { ...setup, corridor, initialPlan },
        },
      ] as const;
    }),
  );
  const result: SimCorridor = {
    id: corridor.raw.id,
    timeReference: corridor.timeReference,
    rawTimeReference: corridor.raw.timeReference,
    scheduleZone: zone.timeZone,
    ids,
    intersections,
    plans,
  };
  cache.set(key, result);
  return result;
}
