/**
 * What the console's server sends its page: `/api/state` (a ConsoleSnapshot) and the live stream
 * (`/api/stream`, server-sent events: `snapshot`, then `intersection` and `diagram` updates). Types only:
 * the page's script imports them too (docs/console.md).
 */

/** What a signal group shows (gateway/core/model.ts `Aspect`, as `hires` messages carry it). */
export type AspectName =
  "green" | "yellow" | "red" | "red-flash" | "yellow-flash" | "walk" | "ped-clearance" | "dont-walk" | "dark";

export interface GroupView {
  readonly id: string;
  readonly kind: "vehicle" | "pedestrian";
  /** The group's phase number in the event log. */
  readonly phase: number;
}

/** One line of an intersection's recent events: its audit trail and the notable event-log rows. */
export interface RecentEvent {
  /** Wall ms on the gateway's clock. */
  readonly atMs: number;
  readonly source: "audit" | "hires";
  /** e.g. "plan-activated", "fault-latched", or the event-log code's name. */
  readonly kind: string;
  readonly text: string;
}

export interface IntersectionView {
  readonly id: string;
  readonly name: string;
  /** Cumulative distance along the corridor, metres (corridor order). */
  readonly positionM: number;
  readonly groups: readonly GroupView[];
  /** null: no availability message seen yet. */
  readonly online: boolean | null;
  readonly offlineReason: string | null;
  /** The gateway's latest status message as published (docs/protocol.md), or null before the first. */
  readonly status: {
    readonly mode: string;
    readonly plan: { readonly id: string; readonly version: number; readonly digest?: string | undefined };
    readonly fault: { readonly kind: string; readonly message: string; readonly at: string } | null;
    readonly lock: { readonly holder: string; readonly token: number } | null;
    readonly lastTxn: { readonly id: string; readonly outcome: string; readonly at: string } | null;
    readonly clock: {
      readonly state: string;
      readonly source: string;
      readonly offsetMs: number | null;
    } | null;
    readonly cycle: {
      readonly stage: string;
      readonly inStep: boolean;
      readonly offsetErrorMs: number;
    } | null;
    readonly at: string;
  } | null;
  /** What every group shows, from the newest `hires` message; null before the first. */
  readonly aspects: Readonly<Record<string, AspectName>> | null;
  /** The gateway's clock when it published those aspects (wall ms). */
  readonly aspectsAtMs: number | null;
  /** Newest last, at most MAX_RECENT_EVENTS. */
  readonly events: readonly RecentEvent[];
}

export type SegmentColor = "green" | "yellow" | "red" | "flash";

export interface DiagramSite {
  readonly id: string;
  readonly positionM: number;
  /** The through group drawn for this intersection, and its phase number; null: none known. */
  readonly throughGroup: string | null;
  readonly phase: number | null;
  /** What the through group showed, in time order, clipped to the window. */
  readonly segments: readonly {
    readonly startMs: number;
    readonly endMs: number;
    readonly color: SegmentColor;
  }[];
}

export interface DiagramBand {
  readonly departStartMs: number;
  readonly departEndMs: number;
}

export interface DiagramView {
  /** The window shown, wall ms on the gateways' clock. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly cycles: number;
  readonly cycleMs: number;
  readonly speedMps: number;
  /** How long a vehicle at the design speed takes from the first intersection to the last, ms. */
  readonly travelMs: number;
  readonly sites: readonly DiagramSite[];
  /** Observed bands: departures from the first site (forward) or the last (reverse), complete ones only. */
  readonly forward: readonly DiagramBand[];
  readonly reverse: readonly DiagramBand[];
  /** The newest complete band's width in each direction, ms (null: no complete band in the window). */
  readonly forwardWidthMs: number | null;
  readonly reverseWidthMs: number | null;
  /** The plan's own bands (gateway/core/progression corridorBands), when every intersection runs one plan. */
  readonly design: {
    readonly planId: string;
    readonly forwardMs: number;
    readonly reverseMs: number;
    readonly efficiency: number;
  } | null;
  /** Event 131 (coordination pattern change) at each intersection, in the window. */
  readonly patternChanges: readonly {
    readonly intersection: string;
    readonly positionM: number;
    readonly atMs: number;
    readonly pattern: number;
  }[];
}

export interface ConsoleCounters {
  /** Messages dropped, by reason: not JSON or not the schema, over the size limit, unknown intersection. */
  readonly malformed: number;
  readonly tooLarge: number;
  readonly foreign: number;
  /** Event-log rows seen again (by seq), and rows evicted from a full ring before their age. */
  readonly hiresDuplicates: number;
  readonly hiresDropped: number;
  readonly streamClients: number;
  readonly streamRefused: number;
  readonly streamSlowDropped: number;
}

export interface ConsoleSnapshot {
  readonly corridor: { readonly id: string; readonly name: string };
  /** The broker's address (never its credentials). */
  readonly broker: string;
  readonly connected: boolean;
  /** The console takes no action: it only reads the corridor's topics. */
  readonly readOnly: true;
  readonly intersections: readonly IntersectionView[];
  readonly diagram: DiagramView;
  readonly counters: ConsoleCounters;
  /** The server's clock when this was made (wall ms). */
  readonly serverNowMs: number;
}
