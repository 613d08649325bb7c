import { IndianaCode, FlashStatus } from "../core/event-log/indiana.js";
import { observedBands } from "../core/progression/index.js";
import type { DiagramBand, DiagramSite, DiagramView, SegmentColor } from "./view.js";

/**
 * The time-space diagram, computed from the event log (pure: the window's end is passed in). Each
 * intersection's through group is drawn from the rows of its phase: 1 begin green, 8 begin yellow,
 * 9/10/11 end of yellow and red clearance (red), 173 unit flash status (flash, until a "not flash"),
 * 182 stop and 184 start (nothing known until the next row of the phase). The observed bands are
 * gateway/core/progression's observedBands over those greens at the design speed.
 */

/** One row of the event log as the console keeps it. */
export interface HiResRow {
  readonly seq: number;
  readonly atMs: number;
  readonly code: number;
  readonly param: number;
}

export interface DiagramSiteInput {
  readonly id: string;
  readonly positionM: number;
  readonly throughGroup: string | null;
  readonly phase: number | null;
  /** The intersection's rows, in seq order. */
  readonly rows: readonly HiResRow[];
}

export interface DiagramInput {
  readonly sites: readonly DiagramSiteInput[];
  readonly speedMps: number;
  readonly cycleMs: number;
  readonly cycles: number;
  readonly toMs: number;
  /** The longest window drawn, whatever the cycle (the rows kept reach no further back). */
  readonly maxWindowMs: number;
  readonly design: DiagramView["design"];
}

type Segment = { startMs: number; endMs: number; color: SegmentColor };

/** What one row does to the through group's colour: a colour, null (unknown from here), or undefined (nothing). */
function colorAfter(
  row: HiResRow,
  phase: number,
  current: SegmentColor | null,
): SegmentColor | null | undefined {
  switch (row.code) {
    case IndianaCode.PHASE_BEGIN_GREEN:
      return row.param === phase ? "green" : undefined;
    case IndianaCode.PHASE_BEGIN_YELLOW_CLEARANCE:
      return row.param === phase ? "yellow" : undefined;
    case IndianaCode.PHASE_END_YELLOW_CLEARANCE:
    case IndianaCode.PHASE_BEGIN_RED_CLEARANCE:
    case IndianaCode.PHASE_END_RED_CLEARANCE:
      return row.param === phase ? "red" : undefined;
    case IndianaCode.UNIT_FLASH_STATUS_CHANGE:
      if (row.param !== FlashStatus.NOT_FLASH) return "flash";
      // Out of flash: every head is red (start-up all-red, or the all-red leaving scheduled flash).
      return current === "flash" ? "red" : undefined;
    case IndianaCode.POWER_FAILURE_DETECTED:
    case IndianaCode.POWER_RESTORED:
      return null;
    default:
      return undefined;
  }
}

/** The through group's colours over [fromMs, toMs), from the rows (in order). */
export function segmentsOf(
  rows: readonly HiResRow[],
  phase: number | null,
  fromMs: number,
  toMs: number,
): Segment[] {
  if (phase === null) return [];
  const out: Segment[] = [];
  let color: SegmentColor | null = null;
  let since = 0;
  const close = (atMs: number) => {
    if (color === null) return;
    const startMs = Math.max(since, fromMs);
    const endMs = Math.min(atMs, toMs);
    if (endMs > startMs) out.push({ startMs, endMs, color });
  };
  for (const row of rows) {
    if (row.atMs >= toMs) break;
    const next = colorAfter(row, phase, color);
    if (next === undefined || next === color) continue;
    close(row.atMs);
    color = next;
    since = row.atMs;
  }
  close(toMs);
  return out;
}

/** The newest band that the window cuts at neither end, as its width. */
function newestWholeWidth(bands: readonly DiagramBand[], fromMs: number, untilMs: number): number | null {
  for (let i = bands.length - 1; i >= 0; i--) {
    const band = bands[i] as DiagramBand;
    if (band.departStartMs > fromMs && band.departEndMs < untilMs)
      return band.departEndMs - band.departStartMs;
  }
  return null;
}

export function buildDiagram(input: DiagramInput): DiagramView {
  const windowMs = Math.min(input.cycles * input.cycleMs, input.maxWindowMs);
  const toMs = input.toMs;
  const fromMs = toMs - windowMs;
  const sites: DiagramSite[] = input.sites.map((site) => ({
    id: site.id,
    positionM: site.positionM,
    throughGroup: site.throughGroup,
    phase: site.phase,
    segments: segmentsOf(site.rows, site.phase, fromMs, toMs),
  }));
  const first = sites[0]?.positionM ?? 0;
  const last = sites[sites.length - 1]?.positionM ?? 0;
  const travelMs = ((last - first) / input.speedMps) * 1000;
  // Only bands whose vehicles have reached the far end by now: what lies ahead is not known yet.
  const untilMs = toMs - travelMs;
  const bands =
    sites.length > 0 && sites.every((s) => s.phase !== null)
      ? observedBands(
          sites.map((s) => ({
            id: s.id,
            positionM: s.positionM,
            greens: s.segments.filter((g) => g.color === "green"),
          })),
          input.speedMps,
          fromMs,
          untilMs,
        )
      : { forward: [], reverse: [] };
  const patternChanges = input.sites.flatMap((site) =>
    site.rows
      .filter((r) => r.code === IndianaCode.COORD_PATTERN_CHANGE && r.atMs >= fromMs && r.atMs < toMs)
      .map((r) => ({ intersection: site.id, positionM: site.positionM, atMs: r.atMs, pattern: r.param })),
  );
  return {
    fromMs,
    toMs,
    cycles: input.cycles,
    cycleMs: input.cycleMs,
    speedMps: input.speedMps,
    travelMs,
    sites,
    forward: bands.forward,
    reverse: bands.reverse,
    forwardWidthMs: newestWholeWidth(bands.forward, fromMs, untilMs),
    reverseWidthMs: newestWholeWidth(bands.reverse, fromMs, untilMs),
    design: input.design,
    patternChanges,
  };
}
