import { EPSILON_MS } from "./arcs.js";
import { MAX_SITES, ProgressionInputError } from "./bands.js";

/**
 * The bands vehicles at the design speed actually got, from observed greens (the time-space diagram's
 * overlay): on a line of absolute time rather than around a cycle, so that a late or cut green shows.
 */

export interface ObservedSite {
  readonly id: string;
  /** Distance along the corridor from its start, metres; non-decreasing in corridor order. */
  readonly positionM: number;
  /** When the through group was green: absolute (wall) ms intervals [startMs, endMs), any order. */
  readonly greens: readonly { readonly startMs: number; readonly endMs: number }[];
}

/** A band: vehicles departing the direction's first site in [departStartMs, departEndMs) pass every site on green. */
export interface ObservedBand {
  readonly departStartMs: number;
  readonly departEndMs: number;
}

/** The most green intervals observedBands takes over all sites. */
export const MAX_OBSERVED_GREENS = 100_000;

type Span = [number, number];

/** Sorted, merged (overlapping or touching intervals joined), empty ones dropped. */
function merged(spans: readonly Span[]): Span[] {
  const sorted = spans.filter(([s, e]) => e - s > EPSILON_MS).sort((a, b) => a[0] - b[0]);
  const out: Span[] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1] + EPSILON_MS) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

function intersectSpans(a: readonly Span[], b: readonly Span[]): Span[] {
  const out: Span[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [sa, ea] = a[i] as Span;
    const [sb, eb] = b[j] as Span;
    const s = Math.max(sa, sb);
    const e = Math.min(ea, eb);
    if (e - s > EPSILON_MS) out.push([s, e]);
    if (ea < eb) i++;
    else j++;
  }
  return out;
}

/**
 * Observed greens (absolute wall ms intervals) → the bands vehicles at the design speed actually got
 * over [fromMs, toMs): each band is a parallelogram on the time-space diagram, given as its departure
 * interval at the direction's first site — the first listed site going forward, the LAST listed site
 * in reverse — with departures in [fromMs, toMs). A vehicle departing at t reaches the site at
 * distance d from there at t + d / speed, and must find it green; a time no green covers (including
 * one past the data given) counts as not green, so give greens up to toMs plus the corridor's travel
 * time. Bands in time order. Work: O(total greens × log + sites × greens).
 */
export function observedBands(
  sites: readonly ObservedSite[],
  speedMps: number,
  fromMs: number,
  toMs: number,
): { forward: ObservedBand[]; reverse: ObservedBand[] } {
  if (!(Number.isFinite(speedMps) && speedMps > 0)) {
    throw new ProgressionInputError(`speed ${speedMps} m/s is not a positive speed`);
  }
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) {
    throw new ProgressionInputError(`window ${fromMs}–${toMs} ms is not a pair of instants`);
  }
  if (sites.length > MAX_SITES)
    throw new ProgressionInputError(`${sites.length} sites: at most ${MAX_SITES}`);
  const greens = sites.reduce((sum, s) => sum + s.greens.length, 0);
  if (greens > MAX_OBSERVED_GREENS) {
    throw new ProgressionInputError(`${greens} green intervals: at most ${MAX_OBSERVED_GREENS}`);
  }
  sites.forEach((site, i) => {
    const before = sites[i - 1];
    if (!Number.isFinite(site.positionM) || (before && site.positionM < before.positionM)) {
      throw new ProgressionInputError(
        `site ${site.id} at ${site.positionM} m: positions must be numbers, non-decreasing in corridor order`,
      );
    }
  });
  if (sites.length === 0 || toMs <= fromMs) return { forward: [], reverse: [] };

  const direction = (originM: number): ObservedBand[] => {
    let feasible: Span[] = [[fromMs, toMs]];
    for (const site of sites) {
      const travelMs = (Math.abs(site.positionM - originM) / speedMps) * 1000;
      const departures = merged(site.greens.map((g): Span => [g.startMs - travelMs, g.endMs - travelMs]));
      feasible = intersectSpans(feasible, departures);
      if (feasible.length === 0) break;
    }
    return feasible.map(([s, e]) => ({ departStartMs: s, departEndMs: e }));
  };
  const first = sites[0]?.positionM ?? 0;
  const last = sites[sites.length - 1]?.positionM ?? 0;
  return { forward: direction(first), reverse: direction(last) };
}
