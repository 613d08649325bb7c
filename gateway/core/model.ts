/**
 * The signal core's data model. All durations are integer milliseconds; all instants are either
 * monotonic milliseconds (lamp timing) or wall-clock UTC milliseconds (plan alignment), and every
 * name says which.
 */

export type GroupKind = "vehicle" | "pedestrian";

/** A lamp position. A pedestrian head uses red for DON'T WALK and green for WALK, as NEMA load switches do. */
export type LampColor = "red" | "yellow" | "green";

export interface Lamps {
  readonly red: boolean;
  readonly yellow: boolean;
  readonly green: boolean;
}

/**
 * What a signal group shows. Vehicle: green, yellow, red, red-flash, yellow-flash, dark.
 * Pedestrian: walk, ped-clearance (flashing DON'T WALK), dont-walk, dark.
 */
export const ASPECTS = [
  "green",
  "yellow",
  "red",
  "red-flash",
  "yellow-flash",
  "walk",
  "ped-clearance",
  "dont-walk",
  "dark",
] as const;
export type Aspect = (typeof ASPECTS)[number];

export interface SignalGroup {
  readonly id: string;
  readonly kind: GroupKind;
  /** Minimum green (vehicle) or minimum walk (pedestrian). */
  readonly minGoMs: number;
  /** Yellow change interval (vehicle) or pedestrian clearance, flashing DON'T WALK (pedestrian). */
  readonly clearanceMs: number;
  /** Red clearance after the clearance interval, before any conflicting group may start. */
  readonly redClearanceMs: number;
  /** What the group shows in scheduled (non-fault) flash. */
  readonly scheduledFlash: "red" | "yellow";
}

export interface MonitorWindows {
  /** Conflicting green/yellow/walk lamps observed for this long latch a fault (MMU: 300 ms). */
  readonly conflictMs: number;
  /** A group observed dark while commanded to show something, for this long (MMU: 800 ms). */
  readonly redFailMs: number;
  /** Observed lamps differing from commanded lamps for this long (about 1 s). */
  readonly mismatchMs: number;
}

export interface Intersection {
  readonly id: string;
  readonly name: string;
  readonly corridorId: string;
  readonly groups: readonly SignalGroup[];
  /** permissive[i][j]: groups i and j may show green/yellow/walk together. Symmetric; false on the diagonal. */
  readonly permissive: readonly (readonly boolean[])[];
  readonly startupFlashMs: number;
  readonly startupAllRedMs: number;
  /** Full flash period (on + off), from flashes per minute. */
  readonly flashPeriodMs: number;
  readonly monitor: MonitorWindows;
  /**
   * Each group's phase number in the high-resolution event log (by group index); absent: index + 1.
   * Read it through phaseNumber().
   */
  readonly phases?: readonly number[];
  /** Vehicle detectors and pedestrian push buttons, read from the modules' discrete inputs (core/detectors.ts). */
  readonly detectors?: readonly Detector[];
}

export type DetectorKind = "vehicle" | "pedestrian";
export type RecallMode = "none" | "min" | "max";

/** A detector input (a loop card's, a video or radar detector's contact, a push button) and what it does. */
export interface Detector {
  readonly id: string;
  /** pedestrian: a push button. */
  readonly kind: DetectorKind;
  /** Group indices it places calls on. */
  readonly calls: readonly number[];
  /** Group indices whose green it extends (vehicle detectors only). */
  readonly extends: readonly number[];
  /** The input must be on this long, while its group is not green, before it calls. */
  readonly delayMs: number;
  /** Carry-over: its extension holds this long after the input goes off. */
  readonly extendMs: number;
  /** Locking memory: a call stays until its group is served, even when the vehicle leaves. */
  readonly locking: boolean;
  /** What its called groups go to while it is failed: a failed detector never starves a movement. */
  readonly failedRecall: "min" | "max";
  /** No on-transition for this long marks it failed; 0: not checked. */
  readonly noActivityMs: number;
  /** On without a break for this long marks it failed; 0: not checked. */
  readonly maxPresenceMs: number;
  /** More on-transitions than this within 60 s marks it failed (chattering); 0: not checked. */
  readonly chatterPerMinute: number;
  /** Its number in the event log (codes 81/82, 89/90). */
  readonly number: number;
}

/** How a non-coordinated stage of an actuated-coordinated plan is served (core/actuated.ts). */
export interface StageActuation {
  readonly minGreenMs: number;
  /** Passage (gap) time: the stage gaps out when no vehicle extends it for this long. */
  readonly passageMs: number;
  readonly maxGreenMs: number;
  /** min/max: served every cycle (max: to its force-off, as a fixed-time stage); none: only when called. */
  readonly recall: RecallMode;
  /** Its pedestrian groups walk every cycle; otherwise only when a push button called them. */
  readonly pedestrianRecall: boolean;
}

/** The phase number the event log writes for a group (core/event-log). */
export function phaseNumber(intersection: Intersection, groupIndex: number): number {
  return intersection.phases?.[groupIndex] ?? groupIndex + 1;
}

export type OffsetReference = "start-of-green" | "end-of-green";

export type Correction =
  | { readonly mode: "dwell"; readonly maxDwellMs: number }
  | { readonly mode: "shortway"; readonly maxLengthenMs: number; readonly maxShortenMs: number };

export interface Stage {
  readonly id: string;
  /** Indices into Intersection.groups, ascending. */
  readonly groups: readonly number[];
  /** member[i]: group i is served (green/walk) in this stage. */
  readonly member: readonly boolean[];
  readonly splitMs: number;
  /** The shortest this stage may run without cutting a minimum or a clearance (see plan.ts). */
  readonly minMs: number;
  /** Present on the non-coordinated stages of an actuated-coordinated plan. */
  readonly actuation?: StageActuation;
}

/** One intersection's part of a corridor plan, checked against that intersection and ready to run. */
export interface IntersectionPlan {
  readonly intersectionId: string;
  readonly planId: string;
  readonly version: number;
  readonly cycleMs: number;
  readonly offsetMs: number;
  readonly offsetReference: OffsetReference;
  readonly coordinatedStage: number;
  readonly stages: readonly Stage[];
  readonly correction: Correction;
  /**
   * Where, counted from the start of stage 0, the offset's reference point lies in the nominal cycle.
   * The local cycle starts at (daily sync + offset − referencePositionMs) modulo the cycle.
   */
  readonly referencePositionMs: number;
  /**
   * The corridor's daily sync point (core/time/time-reference.ts): with `timeZone`, milliseconds after
   * local midnight in that IANA zone; without it, milliseconds after 00:00 UTC (a fixed offset).
   */
  readonly dailySyncMs: number;
  readonly timeZone?: string;
  /** The pattern number the event log writes for this plan (code 131); absent: 0, "not numbered". */
  readonly pattern?: number;
  /**
   * The digest of the plan file this was compiled from (sha256 hex, config/plan-digest.ts): with the
   * id and version, the plan's identity. Absent for a plan stored before digests existed.
   */
  readonly digest?: string;
}

/** Offsets within this distance of the ideal count as in step; smaller errors are trimmed silently. */
export const IN_STEP_TOLERANCE_MS = 500;

export const DAY_MS = 86_400_000;

export function isActive(aspect: Aspect): boolean {
  return (
    aspect === "green" ||
    aspect === "yellow" ||
    aspect === "walk" ||
    aspect === "ped-clearance" ||
    aspect === "yellow-flash"
  );
}

export function lampsAreActive(lamps: Lamps, kind: GroupKind): boolean {
  // A pedestrian head's DON'T WALK lamp (red position) is never a "go" indication, steady or flashing.
  return kind === "vehicle" ? lamps.green || lamps.yellow : lamps.green;
}

export function lampsAreDark(lamps: Lamps): boolean {
  return !lamps.red && !lamps.yellow && !lamps.green;
}

export function sameLamps(a: Lamps, b: Lamps): boolean {
  return a.red === b.red && a.yellow === b.yellow && a.green === b.green;
}

export const DARK: Lamps = { red: false, yellow: false, green: false };
