import { readdirSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { ConfigError, displayPath } from "./errors.js";
import type { LoadedPlan } from "./load.js";
import { readYamlFile } from "./yaml-file.js";

/**
 * How many YAML files of a directory are looked into when searching for a corridor: a config or
 * plans directory holds a handful; a directory with more is not one to read through.
 */
export const CORRIDOR_SEARCH_MAX_FILES = 200;

interface Candidate {
  readonly file: string;
  /** The corridor's plans directory is the plan's own directory. */
  readonly ownsPlan: boolean;
  /** 0: beside the plan, 1: one directory up. */
  readonly distance: number;
}

/** A file that names its corridor by id: a plan, a schedule. */
export type CorridorMember = Pick<LoadedPlan, "file" | "yaml"> & { readonly raw: { readonly corridor: string } };

/**
 * The corridor file a plan (or a schedule) belongs to. A plan names its corridor by id only, so the
 * corridor files (`kind: corridor` with that id) beside the plan and one directory up are candidates —
 * the layout of `config/`: `corridor.yaml` beside `plans/` and `schedules/`. One whose plans directory
 * holds the plan wins, then the nearest; none, or two equally near, is an error at the plan's
 * `corridor` field that says to name the corridor with `--corridor FILE`.
 */
export function findCorridorFile(plan: CorridorMember, what = "plan"): string {
  const planDir = dirname(plan.file);
  const dirs = [...new Set([planDir, dirname(planDir)])];
  const candidates = dirs.flatMap((dir, distance) =>
    corridorFilesIn(dir, plan.raw.corridor, plan.file).map((c) => ({ ...c, distance })),
  );
  const owning = candidates.filter((c) => c.ownsPlan);
  const nearest = Math.min(...candidates.map((c) => c.distance));
  const pool = owning.length > 0 ? owning : candidates.filter((c) => c.distance === nearest);
  if (pool.length === 1) return (pool[0] as Candidate).file;
  const message =
    pool.length === 0
      ? `no corridor file with id ${plan.raw.corridor} beside the ${what} or one directory up (in ${dirs.map(displayPath).join(" and ")}): name it with --corridor FILE`
      : `corridor ${plan.raw.corridor} is in several files (${pool.map((c) => displayPath(c.file)).join(", ")}): name the one to check against with --corridor FILE`;
  throw new ConfigError(plan.yaml.locate([{ path: ["corridor"], message }]));
}

function corridorFilesIn(dir: string, corridorId: string, except: string): Omit<Candidate, "distance">[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const files = names
    .filter((f) => extname(f) === ".yaml" || extname(f) === ".yml")
    .sort()
    .slice(0, CORRIDOR_SEARCH_MAX_FILES)
    .map((f) => join(dir, f))
    .filter((f) => f !== except);
  const found: Omit<Candidate, "distance">[] = [];
  for (const file of files) {
    const data = corridorData(file);
    if (data?.id !== corridorId) continue;
    const plans = typeof data.plansDirectory === "string" ? data.plansDirectory : "plans";
    found.push({ file, ownsPlan: resolve(dir, plans) === dirname(except) });
  }
  return found;
}

/** A file's data if it is a corridor file; any other file, readable or not, is simply not one. */
function corridorData(file: string): { id?: unknown; plansDirectory?: unknown } | null {
  try {
    const data = readYamlFile(file).data as { kind?: unknown; id?: unknown; plansDirectory?: unknown } | null;
    return typeof data === "object" && data !== null && data.kind === "corridor" ? data : null;
  } catch (error) {
    if (error instanceof ConfigError) return null;
    throw error;
  }
}
