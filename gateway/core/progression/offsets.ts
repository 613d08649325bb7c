import { type ArcSet, EPSILON_MS, fullSet, intersect, largestWidth, shiftSet, windowsToSet } from "./arcs.js";
import {
  type BandReport,
  bandOf,
  checkProgressionInput,
  corridorBands,
  type Direction,
  type ProgressionInput,
  ProgressionInputError,
  travelTimes,
} from "./bands.js";

/**
 * The offsets that maximise the through bands for the given splits: a MAXBAND-style search
 * (Little, Kelson & Gartner 1981) over the offsets alone. Each site's green windows move with its
 * offset (its splits, hence its greens relative to its own cycle start, are fixed); the first site's
 * offset is the reference and does not move.
 */

/** What bestOffsets maximises, as the CLI and the docs state it. */
export const OFFSET_OBJECTIVE =
  "maximise b1 + b2 (the sum of both directions' bandwidths) over every site's offset but the first's, " +
  "in steps of the resolution from the current offsets; ties: the least total offset change " +
  "(sum over sites of min(|change|, C − |change|)), then the first found";

export interface OffsetSearchOptions {
  /** Offsets are tried in steps of this many ms from the current ones (default 1000 ms). */
  readonly resolutionMs?: number;
  /**
   * The exhaustive search stops after visiting this many nodes (default 4,000,000: enough for 4 sites at
   * the longest cycle, 300 s, at 1 s; about half a second) and coordinate ascent carries on from the best it found.
   */
  readonly maxNodes?: number;
  /** Rounds of coordinate ascent at most (default 30): a round tries every move once. */
  readonly maxRounds?: number;
}

export interface OffsetSearch {
  readonly objective: string;
  /**
   * "exhaustive": branch and bound over every combination of offsets at the resolution (exact at that
   * resolution); "coordinate-ascent": the corridor was too large for that (or the exhaustive search ran
   * out of nodes), so moves of one site's offset, and of every offset downstream of a site together,
   * were made while any improved the objective: a local optimum, never worse than the current offsets.
   */
  readonly method: "exhaustive" | "coordinate-ascent";
  /** True when the result is the best of every combination at the resolution. */
  readonly exact: boolean;
  readonly resolutionMs: number;
  /** Candidates evaluated: the work done. */
  readonly evaluations: number;
  /** The bands of the current offsets. */
  readonly current: BandReport;
  /** The bands of the best offsets found. */
  readonly best: BandReport;
  /**
   * Per site, in corridor order: how much later than now to put its offset, in [0, C) (add it to the
   * plan's offset, modulo the cycle); 0 for the first site.
   */
  readonly shifts: readonly { readonly id: string; readonly shiftMs: number }[];
  /** The tie-breaker: the sum over sites of min(shift, C − shift). */
  readonly totalChangeMs: number;
}

export const DEFAULT_RESOLUTION_MS = 1000;
export const DEFAULT_MAX_NODES = 4_000_000;
export const DEFAULT_MAX_ROUNDS = 30;
/** At most this many candidate offsets per site (cycle / resolution). */
export const MAX_CANDIDATES = 3000;
/** Past this many leaves (candidates^(sites − 1)) the exhaustive search is not tried at all. */
const EXHAUSTIVE_LEAVES = 1e9;

interface Candidate {
  readonly shiftMs: number;
  /** min(shift, C − shift) */
  readonly changeMs: number;
}

interface Point {
  objective: number;
  changeMs: number;
  shifts: number[];
}

/** Every shift of the grid, the smallest changes first (0, r, C − r, 2r, …). */
function candidates(cycleMs: number, resolutionMs: number): Candidate[] {
  const list: Candidate[] = [];
  for (let k = 0; k * resolutionMs < cycleMs - EPSILON_MS; k++) {
    const shiftMs = k * resolutionMs;
    list.push({ shiftMs, changeMs: Math.min(shiftMs, cycleMs - shiftMs) });
  }
  return list.sort((a, b) => a.changeMs - b.changeMs || a.shiftMs - b.shiftMs);
}

function changeOf(shiftMs: number, cycleMs: number): number {
  return Math.min(shiftMs, cycleMs - shiftMs);
}

/** Better: a larger objective, or the same with less change. */
function better(objective: number, changeMs: number, than: Point): boolean {
  if (objective > than.objective + EPSILON_MS) return true;
  return objective >= than.objective - EPSILON_MS && changeMs < than.changeMs - EPSILON_MS;
}

/**
 * The offsets (as shifts from the current ones) that maximise b1 + b2 for the given splits; the
 * objective is OFFSET_OBJECTIVE. Never reports less than the current offsets' b1 + b2: they are the
 * first candidate. Bounded: at most maxNodes nodes of exhaustive search plus maxRounds rounds of
 * coordinate ascent, each (sites − 1) × 2 × (C / resolution) candidates.
 */
export function bestOffsets(input: ProgressionInput, options: OffsetSearchOptions = {}): OffsetSearch {
  checkProgressionInput(input);
  const cycleMs = input.cycleMs;
  const resolutionMs = options.resolutionMs ?? DEFAULT_RESOLUTION_MS;
  if (!(Number.isFinite(resolutionMs) && resolutionMs > 0 && resolutionMs <= cycleMs)) {
    throw new ProgressionInputError(`resolution ${resolutionMs} ms must be above 0 and at most the cycle`);
  }
  const cands = candidates(cycleMs, resolutionMs);
  if (cands.length > MAX_CANDIDATES) {
    throw new ProgressionInputError(
      `resolution ${resolutionMs} ms gives ${cands.length} offsets per site; at most ${MAX_CANDIDATES} (coarsen it)`,
    );
  }
  const maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
  const maxRounds = options.maxRounds ?? DEFAULT_MAX_ROUNDS;
  const n = input.sites.length;
  const travel = { forward: travelTimes(input, "forward"), reverse: travelTimes(input, "reverse") };
  const siteSet = (i: number, direction: Direction, shiftMs: number): ArcSet =>
    windowsToSet(input.sites[i]?.green ?? [], cycleMs, shiftMs - (travel[direction][i] as number));

  const zero = input.sites.map(() => 0);
  const current = corridorBands(input);
  let best: Point = {
    objective: current.forward.widthMs + current.reverse.widthMs,
    changeMs: 0,
    shifts: zero,
  };
  let evaluations = 1;
  let exact = false;

  const leaves = cands.length ** (n - 1);
  if (n === 1) {
    exact = true;
  } else if (leaves <= EXHAUSTIVE_LEAVES) {
    const result = exhaustive(n, cycleMs, cands, siteSet, best, maxNodes);
    best = result.best;
    evaluations += result.nodes;
    exact = !result.truncated;
  }
  let method: OffsetSearch["method"] = "exhaustive";
  if (!exact) {
    method = "coordinate-ascent";
    const result = coordinateAscent(n, cycleMs, cands, siteSet, best, maxRounds);
    best = result.best;
    evaluations += result.evaluations;
  }

  const forward = bandOf(input, "forward", departureSetsFor(n, "forward", best.shifts, siteSet));
  const reverse = bandOf(input, "reverse", departureSetsFor(n, "reverse", best.shifts, siteSet));
  const report: BandReport = {
    cycleMs,
    forward,
    reverse,
    efficiency: (forward.widthMs + reverse.widthMs) / (2 * cycleMs),
  };
  return {
    objective: OFFSET_OBJECTIVE,
    method,
    exact,
    resolutionMs,
    evaluations,
    current,
    best: report,
    shifts: input.sites.map((site, i) => ({ id: site.id, shiftMs: best.shifts[i] as number })),
    totalChangeMs: best.changeMs,
  };
}

type SiteSet = (i: number, direction: Direction, shiftMs: number) => ArcSet;

function departureSetsFor(
  n: number,
  direction: Direction,
  shifts: readonly number[],
  siteSet: SiteSet,
): ArcSet[] {
  return Array.from({ length: n }, (_, i) => siteSet(i, direction, shifts[i] as number));
}

/**
 * Depth-first branch and bound over sites 1…n−1, each over every candidate shift. A node's children are
 * tried best bound first (then least change): a child's bound is its partial bands (which later sites
 * can only narrow), each capped by the narrowest green still to pass. The first child whose bound
 * cannot beat the best found ends the node; at the last site the bound is the objective itself.
 */
function exhaustive(
  n: number,
  cycleMs: number,
  cands: readonly Candidate[],
  siteSet: SiteSet,
  start: Point,
  maxNodes: number,
): { best: Point; nodes: number; truncated: boolean } {
  // Precomputed sets per site and candidate, when they fit (a few sites); else built at each node.
  const precompute = n * cands.length <= 200_000;
  const table = (direction: Direction): ArcSet[][] | null =>
    precompute
      ? Array.from({ length: n }, (_, i) => cands.map((c) => siteSet(i, direction, c.shiftMs)))
      : null;
  const tables = { forward: table("forward"), reverse: table("reverse") };
  const setAt = (direction: Direction, i: number, k: number): ArcSet =>
    tables[direction]?.[i]?.[k] ?? siteSet(i, direction, (cands[k] as Candidate).shiftMs);
  // The narrowest green from site i on: a bound on any band that must still pass those sites.
  const narrowest = (direction: Direction): number[] => {
    const out = new Array<number>(n + 1).fill(cycleMs);
    for (let i = n - 1; i >= 0; i--) {
      out[i] = Math.min(out[i + 1] as number, largestWidth(siteSet(i, direction, 0), cycleMs));
    }
    return out;
  };
  const cap = { forward: narrowest("forward"), reverse: narrowest("reverse") };

  let best = start;
  let nodes = 0;
  let truncated = false;
  const shifts = new Array<number>(n).fill(0);
  interface Child {
    readonly k: number;
    readonly f: ArcSet;
    readonly r: ArcSet;
    readonly bound: number;
    readonly changeMs: number;
  }
  const visit = (depth: number, f: ArcSet, r: ArcSet, changeMs: number): void => {
    if (depth === n - 1) {
      // The last site: each child is a leaf, whose bound is the objective itself (no site left to cap it).
      for (let k = 0; k < cands.length; k++) {
        if (nodes >= maxNodes) {
          truncated = true;
          return;
        }
        nodes++;
        const c = cands[k] as Candidate;
        const objective =
          largestWidth(intersect(f, setAt("forward", depth, k)), cycleMs) +
          largestWidth(intersect(r, setAt("reverse", depth, k)), cycleMs);
        if (better(objective, changeMs + c.changeMs, best)) {
          shifts[depth] = c.shiftMs;
          best = { objective, changeMs: changeMs + c.changeMs, shifts: [...shifts] };
        }
      }
      shifts[depth] = 0;
      return;
    }
    const children: Child[] = [];
    for (let k = 0; k < cands.length; k++) {
      if (nodes >= maxNodes) {
        truncated = true;
        return;
      }
      nodes++;
      const cf = intersect(f, setAt("forward", depth, k));
      const cr = intersect(r, setAt("reverse", depth, k));
      const bound =
        Math.min(largestWidth(cf, cycleMs), cap.forward[depth + 1] as number) +
        Math.min(largestWidth(cr, cycleMs), cap.reverse[depth + 1] as number);
      children.push({ k, f: cf, r: cr, bound, changeMs: changeMs + (cands[k] as Candidate).changeMs });
    }
    children.sort((a, b) => b.bound - a.bound || a.changeMs - b.changeMs);
    for (const child of children) {
      if (child.bound < best.objective - EPSILON_MS) break;
      if (child.bound <= best.objective + EPSILON_MS && child.changeMs >= best.changeMs) continue;
      shifts[depth] = (cands[child.k] as Candidate).shiftMs;
      visit(depth + 1, child.f, child.r, child.changeMs);
      if (truncated) return;
    }
    shifts[depth] = 0;
  };
  visit(1, setAt("forward", 0, 0), setAt("reverse", 0, 0), 0);
  return { best, nodes, truncated };
}

/**
 * Coordinate ascent from `start`: in each round, for each site after the first, the best shift of that
 * site alone, then the best common shift of it and every site after it (the corridor cut in two there
 * and the downstream part moved); a move is taken only if it is better (objective, then change). Stops
 * after a round without a move, or after maxRounds.
 */
function coordinateAscent(
  n: number,
  cycleMs: number,
  cands: readonly Candidate[],
  siteSet: SiteSet,
  start: Point,
  maxRounds: number,
): { best: Point; evaluations: number } {
  const shifts = [...start.shifts];
  let point: Point = { ...start, shifts };
  let evaluations = 0;
  const sets = (direction: Direction) => shifts.map((s, i) => siteSet(i, direction, s));
  const all = (list: readonly ArcSet[], from: number, to: number, skip = -1): ArcSet => {
    let acc = fullSet(cycleMs);
    for (let j = from; j < to; j++) if (j !== skip) acc = intersect(acc, list[j] as ArcSet);
    return acc;
  };
  const totalChange = () => shifts.reduce((sum, s) => sum + changeOf(s, cycleMs), 0);

  for (let round = 0; round < maxRounds; round++) {
    let moved = false;
    // One site alone.
    for (let i = 1; i < n; i++) {
      const f = sets("forward");
      const r = sets("reverse");
      const othersF = all(f, 0, n, i);
      const othersR = all(r, 0, n, i);
      const own = changeOf(shifts[i] as number, cycleMs);
      let choice: { shiftMs: number; objective: number; changeMs: number } | null = null;
      for (const c of cands) {
        evaluations++;
        const objective =
          largestWidth(intersect(othersF, siteSet(i, "forward", c.shiftMs)), cycleMs) +
          largestWidth(intersect(othersR, siteSet(i, "reverse", c.shiftMs)), cycleMs);
        const changeMs = point.changeMs - own + c.changeMs;
        const than = choice ? { ...point, objective: choice.objective, changeMs: choice.changeMs } : point;
        if (better(objective, changeMs, than)) choice = { shiftMs: c.shiftMs, objective, changeMs };
      }
      if (choice) {
        shifts[i] = choice.shiftMs;
        point = { objective: choice.objective, changeMs: choice.changeMs, shifts };
        moved = true;
      }
    }
    // Site i and everything after it, together.
    for (let i = 1; i < n; i++) {
      const f = sets("forward");
      const r = sets("reverse");
      const headF = all(f, 0, i);
      const headR = all(r, 0, i);
      const tailF = all(f, i, n);
      const tailR = all(r, i, n);
      let choice: { shiftMs: number; objective: number; changeMs: number } | null = null;
      for (const c of cands) {
        if (c.shiftMs === 0) continue;
        evaluations++;
        const objective =
          largestWidth(intersect(headF, shiftSet(tailF, c.shiftMs, cycleMs)), cycleMs) +
          largestWidth(intersect(headR, shiftSet(tailR, c.shiftMs, cycleMs)), cycleMs);
        const bestSoFar = choice ? choice.objective : point.objective;
        if (objective < bestSoFar - EPSILON_MS) continue;
        let changeMs = 0;
        for (let j = 0; j < n; j++) {
          const s = shifts[j] as number;
          changeMs += changeOf(j >= i ? (s + c.shiftMs) % cycleMs : s, cycleMs);
        }
        const than = choice ? { ...point, objective: choice.objective, changeMs: choice.changeMs } : point;
        if (better(objective, changeMs, than)) choice = { shiftMs: c.shiftMs, objective, changeMs };
      }
      if (choice) {
        for (let j = i; j < n; j++) shifts[j] = ((shifts[j] as number) + choice.shiftMs) % cycleMs;
        point = { objective: choice.objective, changeMs: totalChange(), shifts };
        moved = true;
      }
    }
    if (!moved) break;
  }
  return { best: { ...point, shifts: [...shifts] }, evaluations };
}
