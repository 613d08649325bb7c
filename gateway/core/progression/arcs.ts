/**
 * Sets of instants of a cycle [0, C): the arithmetic under the green-wave bands. A set is a flat array
 * [s0, e0, s1, e1, …] of half-open intervals [s, e), sorted, disjoint, not touching, 0 ≤ s < e ≤ C.
 * The cycle is a circle: an interval ending at C and one starting at 0 are one arc across the cycle's
 * end (`largestArc` joins them). Instants are milliseconds as floating point numbers: travel times
 * (distance / speed) are rarely whole milliseconds.
 */

/** Two edges closer than this (ms) are the same instant: what floating point leaves of a sum. */
export const EPSILON_MS = 1e-6;

export type ArcSet = readonly number[];

/** A window of a cycle [startMs, endMs) in cycle time; endMs may be < startMs (wraps past the cycle end). */
export interface CycleWindow {
  readonly startMs: number;
  readonly endMs: number;
}

/** `a` modulo the cycle, in [0, cycleMs) even where floating point would round up to cycleMs. */
export function cyclePoint(a: number, cycleMs: number): number {
  const r = a % cycleMs;
  const p = r < 0 ? r + cycleMs : r;
  return p >= cycleMs - EPSILON_MS && p > 0 ? 0 : p;
}

/** The whole cycle. */
export function fullSet(cycleMs: number): ArcSet {
  return [0, cycleMs];
}

/**
 * The windows, each moved later by `shiftMs`, as a set. A window whose end is its start is empty; one
 * at least a cycle long (endMs − startMs ≥ C) is the whole cycle.
 */
export function windowsToSet(windows: readonly CycleWindow[], cycleMs: number, shiftMs = 0): ArcSet {
  const pieces: number[] = [];
  for (const w of windows) {
    const span = w.endMs - w.startMs;
    if (span >= cycleMs - EPSILON_MS) return fullSet(cycleMs);
    const length = span >= 0 ? span : span + cycleMs;
    if (length <= EPSILON_MS) continue;
    const s = cyclePoint(w.startMs + shiftMs, cycleMs);
    const e = s + length;
    if (e <= cycleMs + EPSILON_MS) {
      pieces.push(s, Math.min(e, cycleMs));
    } else {
      pieces.push(s, cycleMs, 0, e - cycleMs);
    }
  }
  return normalize(pieces, cycleMs);
}

/** Sorts and merges intervals that overlap or touch (within EPSILON_MS). */
function normalize(pieces: number[], cycleMs: number): ArcSet {
  const n = pieces.length / 2;
  if (n <= 1) return pieces;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (pieces[2 * a] as number) - (pieces[2 * b] as number),
  );
  const out: number[] = [];
  for (const i of order) {
    const s = pieces[2 * i] as number;
    const e = pieces[2 * i + 1] as number;
    const last = out.length - 1;
    if (last > 0 && s <= (out[last] as number) + EPSILON_MS) {
      out[last] = Math.max(out[last] as number, e);
    } else {
      out.push(s, e);
    }
  }
  if (out.length === 2 && (out[0] as number) <= EPSILON_MS && (out[1] as number) >= cycleMs - EPSILON_MS) {
    return fullSet(cycleMs);
  }
  return out;
}

/** The set moved later by `shiftMs` (modulo the cycle). */
export function shiftSet(set: ArcSet, shiftMs: number, cycleMs: number): ArcSet {
  if (set.length === 0) return set;
  const windows: CycleWindow[] = [];
  for (let i = 0; i < set.length; i += 2) {
    windows.push({ startMs: set[i] as number, endMs: set[i + 1] as number });
  }
  return windowsToSet(windows, cycleMs, shiftMs);
}

/** The instants in both sets: a merge of two sorted lists, O(|a| + |b|). */
export function intersect(a: ArcSet, b: ArcSet): ArcSet {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const s = Math.max(a[i] as number, b[j] as number);
    const ea = a[i + 1] as number;
    const eb = b[j + 1] as number;
    const e = Math.min(ea, eb);
    if (e - s > EPSILON_MS) out.push(s, e);
    if (ea < eb) i += 2;
    else j += 2;
  }
  return out;
}

/** The largest contiguous arc of a set, across the cycle's end if need be. Width 0 (start 0) for none. */
export function largestArc(
  set: ArcSet,
  cycleMs: number,
): { readonly startMs: number; readonly widthMs: number } {
  if (set.length === 0) return { startMs: 0, widthMs: 0 };
  const first = set[0] as number;
  const lastEnd = set[set.length - 1] as number;
  if (set.length === 2 && first <= EPSILON_MS && lastEnd >= cycleMs - EPSILON_MS) {
    return { startMs: 0, widthMs: cycleMs };
  }
  // The arc across the cycle's end: the last interval, if it reaches C, continued by the first, if it starts at 0.
  const wraps = set.length > 2 && first <= EPSILON_MS && lastEnd >= cycleMs - EPSILON_MS;
  let best = { startMs: 0, widthMs: 0 };
  const from = wraps ? 2 : 0;
  const to = wraps ? set.length - 2 : set.length;
  for (let i = from; i < to; i += 2) {
    const w = (set[i + 1] as number) - (set[i] as number);
    if (w > best.widthMs + EPSILON_MS) best = { startMs: set[i] as number, widthMs: w };
  }
  if (wraps) {
    const s = set[set.length - 2] as number;
    const w = cycleMs - s + (set[1] as number);
    // Ties go to the earlier start; the wrapping arc starts latest.
    if (w > best.widthMs + EPSILON_MS) best = { startMs: s, widthMs: w };
  }
  return best;
}

/** The width of the largest arc (largestArc's, without building it): what the offset search compares. */
export function largestWidth(set: ArcSet, cycleMs: number): number {
  const m = set.length;
  if (m === 0) return 0;
  const wraps = (set[0] as number) <= EPSILON_MS && (set[m - 1] as number) >= cycleMs - EPSILON_MS;
  if (wraps && m === 2) return cycleMs;
  let best = 0;
  for (let i = wraps ? 2 : 0; i < (wraps ? m - 2 : m); i += 2) {
    const w = (set[i + 1] as number) - (set[i] as number);
    if (w > best) best = w;
  }
  return wraps ? Math.max(best, cycleMs - (set[m - 2] as number) + (set[1] as number)) : best;
}
