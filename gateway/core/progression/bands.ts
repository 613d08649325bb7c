import {
  type ArcSet,
  type CycleWindow,
  cyclePoint,
  EPSILON_MS,
  fullSet,
  intersect,
  largestArc,
  windowsToSet,
} from "./arcs.js";

/**
 * The through bands of a corridor (docs/green-wave.md): for each direction, the largest contiguous set
 * of departure instants (in cycle time) from which a vehicle at the design speed passes every
 * intersection on green, and the bandwidth efficiency (b1 + b2) / 2C.
 */

export type { CycleWindow } from "./arcs.js";

export interface ProgressionSite {
  readonly id: string;
  /** Distance along the corridor from its start, metres; non-decreasing in corridor order. */
  readonly positionM: number;
  /** When the site's through group is green, in cycle time. */
  readonly green: readonly CycleWindow[];
}

export interface ProgressionInput {
  readonly cycleMs: number;
  /** The design (progression) speed, metres per second. */
  readonly speedMps: number;
  /** In corridor order: "forward" travels from the first to the last. */
  readonly sites: readonly ProgressionSite[];
}

export type Direction = "forward" | "reverse";

export interface Band {
  readonly direction: Direction;
  readonly widthMs: number;
  /**
   * Where the band starts at each site (cycle time): the instant its first vehicle passes the site, in
   * site (corridor) order for both directions. Empty when widthMs is 0.
   */
  readonly starts: readonly { readonly id: string; readonly atMs: number }[];
}

export interface BandReport {
  readonly cycleMs: number;
  readonly forward: Band;
  readonly reverse: Band;
  /** (b1 + b2) / 2C */
  readonly efficiency: number;
}

/** The most sites a corridor has (the corridor file's limit). */
export const MAX_SITES = 256;
/** The most green windows one site may have in a cycle (a plan has at most 16 stages). */
export const MAX_WINDOWS_PER_SITE = 64;

/** Input the arithmetic cannot work on: a caller's mistake, named. */
export class ProgressionInputError extends Error {
  override readonly name = "ProgressionInputError";
}

/** Checks what every function here relies on; throws a ProgressionInputError naming the first problem. */
export function checkProgressionInput(input: ProgressionInput): void {
  const fail = (message: string): never => {
    throw new ProgressionInputError(message);
  };
  if (!(Number.isFinite(input.cycleMs) && input.cycleMs > 0))
    fail(`cycle ${input.cycleMs} ms is not a positive duration`);
  if (!(Number.isFinite(input.speedMps) && input.speedMps > 0))
    fail(`speed ${input.speedMps} m/s is not a positive speed`);
  if (input.sites.length === 0) fail("a corridor needs at least one site");
  if (input.sites.length > MAX_SITES) fail(`${input.sites.length} sites: at most ${MAX_SITES}`);
  input.sites.forEach((site, i) => {
    if (!Number.isFinite(site.positionM))
      fail(`site ${site.id}: position ${site.positionM} m is not a number`);
    const before = input.sites[i - 1];
    if (before && site.positionM < before.positionM) {
      fail(
        `site ${site.id} at ${site.positionM} m lies before ${before.id} at ${before.positionM} m: list sites in corridor order`,
      );
    }
    if (site.green.length > MAX_WINDOWS_PER_SITE) {
      fail(`site ${site.id}: ${site.green.length} green windows, at most ${MAX_WINDOWS_PER_SITE}`);
    }
    for (const w of site.green) {
      if (!Number.isFinite(w.startMs) || !Number.isFinite(w.endMs)) {
        fail(`site ${site.id}: green window ${w.startMs}–${w.endMs} ms is not a pair of instants`);
      }
    }
  });
}

/**
 * Milliseconds from the direction's first site to each site (in corridor order) at the design speed:
 * forward from the first listed site, reverse from the last.
 */
export function travelTimes(input: ProgressionInput, direction: Direction): number[] {
  const sites = input.sites;
  const origin = (direction === "forward" ? sites[0] : sites[sites.length - 1])?.positionM ?? 0;
  return sites.map((s) => (Math.abs(s.positionM - origin) / input.speedMps) * 1000);
}

/**
 * Each site's green as departure instants at the direction's first site: a vehicle leaving then reaches
 * the site while it is green. Sites in corridor order; `shiftsMs[i]` moves site i's green later.
 */
export function departureSets(
  input: ProgressionInput,
  direction: Direction,
  shiftsMs?: readonly number[],
): ArcSet[] {
  const travel = travelTimes(input, direction);
  return input.sites.map((site, i) =>
    windowsToSet(site.green, input.cycleMs, (shiftsMs?.[i] ?? 0) - (travel[i] as number)),
  );
}

/** The band of one direction from its departure sets (the intersection of all of them). */
export function bandOf(input: ProgressionInput, direction: Direction, sets: readonly ArcSet[]): Band {
  let feasible = fullSet(input.cycleMs);
  for (const set of sets) feasible = intersect(feasible, set);
  const arc = largestArc(feasible, input.cycleMs);
  if (arc.widthMs <= EPSILON_MS) return { direction, widthMs: 0, starts: [] };
  const travel = travelTimes(input, direction);
  return {
    direction,
    widthMs: tidy(arc.widthMs),
    starts: input.sites.map((site, i) => ({
      id: site.id,
      atMs: cyclePoint(tidy(arc.startMs + (travel[i] as number)), input.cycleMs),
    })),
  };
}

/** Rounded to a nanosecond: what floating point leaves of a sum (77039.99999999999) is noise to a reader. */
function tidy(ms: number): number {
  return Math.round(ms * 1e6) / 1e6;
}

/**
 * The through band in each direction and the bandwidth efficiency (b1 + b2) / 2C. A band is the
 * largest contiguous arc of departure instants (ties: the earliest in cycle time at the first site)
 * from which a vehicle at the design speed finds every site green; where it has several equal arcs,
 * the first. Work: O(sites × windows).
 */
export function corridorBands(input: ProgressionInput): BandReport {
  checkProgressionInput(input);
  const forward = bandOf(input, "forward", departureSets(input, "forward"));
  const reverse = bandOf(input, "reverse", departureSets(input, "reverse"));
  return {
    cycleMs: input.cycleMs,
    forward,
    reverse,
    efficiency: (forward.widthMs + reverse.widthMs) / (2 * input.cycleMs),
  };
}
