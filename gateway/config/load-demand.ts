import { resolve } from "node:path";
import type { Issue } from "../core/issues.js";
import { ConfigError, displayPath } from "./errors.js";
import { findCorridorFile } from "./find-corridor.js";
import type { Loaded, LoadedCorridor } from "./load.js";
import {
  APPROACHES,
  type Approach,
  DEFAULT_TURNING,
  type DemandFile,
  demandFileSchema,
  isMainStreet,
  type TurningShares,
} from "./traffic-schema.js";
import { validate } from "./validate.js";
import { readYamlFile } from "./yaml-file.js";

/** How far turning shares may sum from 1 (they are written with two or three decimals). */
export const SHARE_SUM_TOLERANCE = 1e-6;

/** A demand file checked against its corridor, with every default filled in. */
export interface LoadedDemand extends Loaded<DemandFile> {
  /** Vehicles per hour entering at the corridor's first end (eastbound) and its last (westbound). */
  readonly mainStreet: { readonly eastbound: number; readonly westbound: number };
  /** For every intersection of the corridor: vehicles per hour entering from its side street. */
  readonly sideStreets: ReadonlyMap<string, { readonly northbound: number; readonly southbound: number }>;
  /** For every intersection of the corridor and each approach: the turning shares (summing to 1). */
  readonly turning: ReadonlyMap<string, Readonly<Record<Approach, TurningShares>>>;
}

/**
 * Loads a `kind: demand` file for a corridor: every problem at once, each at its file:line:column — a
 * corridor it is not for, an intersection the corridor does not have, turning shares that do not sum
 * to 1 (negative flows and shares outside 0–1 are the schema's).
 */
export function loadDemand(file: string, corridor: LoadedCorridor): LoadedDemand {
  const path = resolve(file);
  const yaml = readYamlFile(path);
  const raw = validate(demandFileSchema, yaml);
  const issues: Issue[] = [];
  if (raw.corridor !== corridor.raw.id)
    issues.push({
      path: ["corridor"],
      message: `demand ${raw.id} is for corridor ${raw.corridor}, not ${corridor.raw.id} (${displayPath(corridor.file)})`,
    });
  const known = corridor.raw.intersections.map((entry) => entry.id);
  const unknown = (field: string, id: string) =>
    issues.push({
      path: [field, id],
      message: `corridor ${corridor.raw.id} has no intersection ${id} (it has ${known.join(", ")})`,
    });
  for (const id of Object.keys(raw.sideStreets)) if (!known.includes(id)) unknown("sideStreets", id);
  for (const [id, approaches] of Object.entries(raw.turning)) {
    if (!known.includes(id)) unknown("turning", id);
    for (const [approach, shares] of Object.entries(approaches)) {
      const sum = shares.left + shares.through + shares.right;
      if (Math.abs(sum - 1) > SHARE_SUM_TOLERANCE)
        issues.push({
          path: ["turning", id, approach],
          message: `turning shares of ${id} ${approach} sum to ${Number(sum.toFixed(6))}, not 1 (left ${shares.left} + through ${shares.through} + right ${shares.right})`,
        });
    }
  }
  if (issues.length > 0) throw new ConfigError(yaml.locate(issues));
  const sideStreets = new Map(
    known.map((id) => [id, Object.hasOwn(raw.sideStreets, id) ? raw.sideStreets[id] : { northbound: 0, southbound: 0 }]),
  ) as Map<string, { northbound: number; southbound: number }>;
  const turning = new Map(
    known.map((id) => {
      const given = Object.hasOwn(raw.turning, id) ? (raw.turning[id] ?? {}) : {};
      const shares = Object.fromEntries(
        APPROACHES.map((a) => [a, given[a] ?? DEFAULT_TURNING[isMainStreet(a) ? "main" : "side"]]),
      ) as Record<Approach, TurningShares>;
      return [id, shares];
    }),
  );
  return { file: path, raw, yaml, mainStreet: raw.mainStreet, sideStreets, turning };
}

/** The corridor file of a demand file, searched for as a plan's is (by the demand's corridor id, beside it or one directory up). */
export function findDemandCorridor(file: string): string {
  const yaml = readYamlFile(resolve(file));
  const raw = validate(demandFileSchema, yaml);
  return findCorridorFile({ file: yaml.file, raw, yaml }, "demand");
}
