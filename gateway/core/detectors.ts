import { invariant } from "./invariant.js";
import type { Detector, Intersection, RecallMode } from "./model.js";

/**
 * The detector inputs as a pure machine: each tick's readings (a vehicle detector's or push button's
 * contact, or null when its module or channel gave no reading) become each signal group's demand —
 * a call, an extension, or a recall while a detector that calls it is failed. Diagnostics run on
 * every reading: no activity for too long, presence for too long, chattering, and no reading at all
 * each mark the detector failed; its groups then go to its recall, so a broken detector can never
 * starve a movement (NTCIP 1202's detector diagnostics, in spirit).
 */

/** What the sequencer needs to know about one signal group. */
export interface GroupDemand {
  /** A call is registered: a vehicle waits (or waited, with locking memory) or a button was pressed. */
  readonly call: boolean;
  /** A vehicle is on an extending detector now, or was within its carry-over. */
  readonly extend: boolean;
  /** none, or min/max while a detector that calls this group is failed. */
  readonly recall: RecallMode;
}

export const NO_DEMAND: GroupDemand = { call: false, extend: false, recall: "none" };

export type DetectorFailureReason = "no-activity" | "max-presence" | "chatter" | "no-reading";

export interface DetectorFailure {
  readonly reason: DetectorFailureReason;
  readonly sinceMs: number;
}

export interface DetectorState {
  readonly on: boolean;
  /** When the input last changed (monotonic ms). */
  readonly changedMs: number;
  /** The last on-transition: activity. */
  readonly lastOnsetMs: number;
  /** On-transitions within the last minute, oldest first; bounded by the chatter limit + 1. */
  readonly onsets: readonly number[];
  /** When its called groups last stopped being green (+∞ while one is): its delay counts from then at the earliest. */
  readonly armedMs: number;
  /** The last instant a reading came; no reading for NO_READING_MS fails the detector. */
  readonly lastReadingMs: number;
  readonly failure: DetectorFailure | null;
}

export interface DetectorBankState {
  readonly detectors: readonly DetectorState[];
  /** Locking memory, by group index: a call that stays until the group is served. */
  readonly locked: readonly boolean[];
}

export type DetectorEvent =
  | { readonly type: "detector"; readonly detector: number; readonly on: boolean }
  | {
      readonly type: "detector-failed";
      readonly detector: number;
      readonly reason: DetectorFailureReason;
      readonly recall: "min" | "max";
      readonly message: string;
    }
  | { readonly type: "detector-restored"; readonly detector: number };

export interface DetectorStep {
  readonly state: DetectorBankState;
  readonly demand: readonly GroupDemand[];
  readonly events: readonly DetectorEvent[];
}

/** A module or channel that gives no reading for this long fails its detectors (a lost module's window). */
export const NO_READING_MS = 2000;
/** The window over which on-transitions are counted for chattering. */
export const CHATTER_WINDOW_MS = 60_000;

export function startDetectors(intersection: Intersection, nowMonoMs: number): DetectorBankState {
  return {
    detectors: (intersection.detectors ?? []).map(() => ({
      on: false,
      changedMs: nowMonoMs,
      lastOnsetMs: nowMonoMs,
      onsets: [],
      armedMs: Number.NEGATIVE_INFINITY,
      lastReadingMs: nowMonoMs,
      failure: null,
    })),
    locked: intersection.groups.map(() => false),
  };
}

/**
 * One reading of every detector. `readings` is by detector index (null: no reading this time, e.g. its
 * module did not answer); `green` by group index: the groups in their go interval now, whose locked
 * calls are thereby served.
 */
export function stepDetectors(
  intersection: Intersection,
  state: DetectorBankState,
  readings: readonly (boolean | null)[],
  green: readonly boolean[],
  nowMonoMs: number,
): DetectorStep {
  const specs = intersection.detectors ?? [];
  invariant(
    readings.length === specs.length,
    () => `${readings.length} detector readings for ${specs.length} detectors at ${intersection.id}`,
  );
  const events: DetectorEvent[] = [];
  const detectors = state.detectors.map((d, i) => {
    const spec = specs[i] as Detector;
    const read = readDetector(spec, d, readings[i] ?? null, nowMonoMs, i, events);
    // While a called group is green its delay does not run; it starts at the first reading after.
    const greenNow = spec.calls.some((g) => green[g]);
    const armedMs = greenNow
      ? Number.POSITIVE_INFINITY
      : read.armedMs === Number.POSITIVE_INFINITY
        ? nowMonoMs
        : read.armedMs;
    const next = armedMs === read.armedMs ? read : { ...read, armedMs };
    return diagnose(intersection, spec, next, nowMonoMs, i, events);
  });
  const locked = state.locked.map((l, g) => l && !green[g]);
  const calls = intersection.groups.map(() => false);
  const extend = intersection.groups.map(() => false);
  const recall: RecallMode[] = intersection.groups.map(() => "none");
  detectors.forEach((d, i) => {
    const spec = specs[i] as Detector;
    if (d.failure) {
      for (const g of spec.calls) recall[g] = stronger(recall[g] as RecallMode, spec.failedRecall);
      return;
    }
    // The delay counts while its groups are not green: from the later of the input's onset and the
    // end of their green.
    const calling = d.on && nowMonoMs - Math.max(d.changedMs, d.armedMs) >= spec.delayMs;
    for (const g of spec.calls) {
      if (!calling || green[g]) continue;
      if (spec.locking) locked[g] = true;
      else calls[g] = true;
    }
    const extending = d.on || nowMonoMs - d.changedMs < spec.extendMs;
    if (extending) for (const g of spec.extends) extend[g] = true;
  });
  const demand = intersection.groups.map((_, g) => ({
    call: calls[g] === true || locked[g] === true,
    extend: extend[g] === true,
    recall: recall[g] as RecallMode,
  }));
  return { state: { detectors, locked }, demand, events };
}

function stronger(a: RecallMode, b: RecallMode): RecallMode {
  if (a === "max" || b === "max") return "max";
  return a === "min" || b === "min" ? "min" : "none";
}

function readDetector(
  spec: Detector,
  d: DetectorState,
  reading: boolean | null,
  t: number,
  index: number,
  events: DetectorEvent[],
): DetectorState {
  if (reading === null) return d;
  if (reading === d.on) return { ...d, lastReadingMs: t };
  events.push({ type: "detector", detector: index, on: reading });
  if (!reading) return { ...d, on: false, changedMs: t, lastReadingMs: t };
  // Only the last (limit + 1) onsets matter: one more than the limit within the window is chattering.
  const keep = Math.max(1, spec.chatterPerMinute + 1);
  const onsets = [...d.onsets.filter((at) => t - at < CHATTER_WINDOW_MS), t].slice(-keep);
  return { ...d, on: true, changedMs: t, lastOnsetMs: t, onsets, lastReadingMs: t };
}

/** Marks a detector failed, or restored, by what its readings show. */
function diagnose(
  intersection: Intersection,
  spec: Detector,
  d: DetectorState,
  t: number,
  index: number,
  events: DetectorEvent[],
): DetectorState {
  const recent = d.onsets.filter((at) => t - at < CHATTER_WINDOW_MS).length;
  if (d.failure) {
    if (!restored(spec, d, recent, t)) return d;
    events.push({ type: "detector-restored", detector: index });
    return { ...d, failure: null };
  }
  let reason: DetectorFailureReason | null = null;
  if (t - d.lastReadingMs >= NO_READING_MS) reason = "no-reading";
  else if (spec.chatterPerMinute > 0 && recent > spec.chatterPerMinute) reason = "chatter";
  else if (spec.maxPresenceMs > 0 && d.on && t - d.changedMs >= spec.maxPresenceMs) reason = "max-presence";
  else if (spec.noActivityMs > 0 && !d.on && t - d.lastOnsetMs >= spec.noActivityMs) reason = "no-activity";
  if (!reason) return d;
  events.push({
    type: "detector-failed",
    detector: index,
    reason,
    recall: spec.failedRecall,
    message: failureMessage(intersection, spec, reason),
  });
  return { ...d, failure: { reason, sinceMs: t } };
}

/**
 * A failure ends when the input behaves again: a reading comes, the stuck input goes off, activity
 * returns, or a whole minute passes with at most half the chatter limit (hysteresis, so that a detector
 * at the limit does not flap between failed and restored).
 */
function restored(spec: Detector, d: DetectorState, recent: number, t: number): boolean {
  const failure = d.failure as DetectorFailure;
  switch (failure.reason) {
    case "no-reading":
      return d.lastReadingMs > failure.sinceMs;
    case "max-presence":
      return !d.on;
    case "no-activity":
      return d.lastOnsetMs > failure.sinceMs;
    case "chatter":
      return t - failure.sinceMs >= CHATTER_WINDOW_MS && recent <= Math.floor(spec.chatterPerMinute / 2);
  }
}

function failureMessage(intersection: Intersection, spec: Detector, reason: DetectorFailureReason): string {
  const groups = spec.calls.map((g) => intersection.groups[g]?.id ?? `#${g}`).join(", ");
  const what = {
    "no-reading": `no reading for ${NO_READING_MS / 1000} s (its module or input channel does not answer)`,
    "max-presence": `on without a break for ${spec.maxPresenceMs / 1000} s (stuck on: a broken loop or a parked vehicle)`,
    chatter: `more than ${spec.chatterPerMinute} on-transitions within a minute (chattering: a loose connection or crosstalk)`,
    "no-activity": `no vehicle for ${spec.noActivityMs / 60_000} min (a dead loop or a cut lead-in)`,
  }[reason];
  return `detector ${spec.id} at ${intersection.id} failed: ${what}; groups ${groups} are on ${spec.failedRecall} recall until it behaves again`;
}
