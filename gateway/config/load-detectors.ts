import type { Issue } from "../core/issues.js";
import type { Detector, DetectorKind, SignalGroup } from "../core/model.js";
import { secondsToMs } from "../core/units.js";
import type { DetectorFile } from "./schema.js";

/**
 * An intersection file's `detectors:` (docs/detectors.md) as the core's Detectors: group ids as
 * indices, durations in ms, the defaults filled in. Every problem that does not need the devices is
 * found here (unknown groups, a group of the wrong kind, repeated ids and numbers); the inputs are
 * checked against the modules by devices/io-map.ts's wireDetectors.
 */

/** Diagnostics' defaults (docs/detectors.md). */
export const DETECTOR_DEFAULTS = {
  noActivityMinutes: 60,
  maxPresenceSeconds: { vehicle: 180, pedestrian: 60 },
  chatterPerMinute: 120,
} as const;

const AT = "detectors";

export function buildDetectors(
  raw: readonly DetectorFile[],
  groups: readonly SignalGroup[],
  index: ReadonlyMap<string, number>,
): { detectors: Detector[]; issues: Issue[] } {
  const issues: Issue[] = [];
  const ids = new Set<string>();
  const numbers = new Map<string, { id: string; d: number }>();
  const detectors = raw.map((detector, d): Detector => {
    if (ids.has(detector.id))
      issues.push({
        path: [AT, d, "id"],
        message: `detector ${detector.id} is defined twice: give each detector its own id`,
      });
    ids.add(detector.id);
    const calls = groupsOf(detector, "calls", detector.calls, groups, index, issues, d);
    let extendsGroups: number[] = [];
    if (detector.kind === "pedestrian") {
      if (detector.extends !== undefined && detector.extends.length > 0)
        issues.push({
          path: [AT, d, "extends"],
          message: `detector ${detector.id} is a pedestrian push button: a button calls its walk, it does not extend a green; remove extends`,
        });
    } else {
      extendsGroups =
        detector.extends === undefined
          ? calls
          : groupsOf(detector, "extends", detector.extends, groups, index, issues, d);
    }
    const number = detector.number ?? d + 1;
    const key = `${detector.kind}:${number}`;
    const other = numbers.get(key);
    if (other !== undefined)
      issues.push({
        path: detector.number === undefined ? [AT, d] : [AT, d, "number"],
        message: `${detector.kind} detectors ${other.id} and ${detector.id} both have number ${number}${detector.number === undefined ? ` (${detector.id}'s by its position in the list)` : ""}: the event log could not tell them apart; give ${detector.id} a number of its own (1–255)`,
      });
    else numbers.set(key, { id: detector.id, d });
    const diagnostics = detector.diagnostics;
    return {
      id: detector.id,
      kind: detector.kind,
      calls,
      extends: extendsGroups,
      delayMs: secondsToMs(detector.delaySeconds),
      extendMs: secondsToMs(detector.extendSeconds),
      locking: detector.memory === "locking",
      failedRecall: detector.onFailure === "min-recall" ? "min" : "max",
      noActivityMs: Math.round((diagnostics.noActivityMinutes ?? DETECTOR_DEFAULTS.noActivityMinutes) * 60_000),
      maxPresenceMs: secondsToMs(
        diagnostics.maxPresenceSeconds ?? DETECTOR_DEFAULTS.maxPresenceSeconds[detector.kind],
      ),
      chatterPerMinute: diagnostics.chatterPerMinute ?? DETECTOR_DEFAULTS.chatterPerMinute,
      number,
    };
  });
  return { detectors, issues };
}

/** The group indices a detector's `calls` or `extends` names: known groups of the detector's kind, each once. */
function groupsOf(
  detector: DetectorFile,
  field: "calls" | "extends",
  ids: readonly string[],
  groups: readonly SignalGroup[],
  index: ReadonlyMap<string, number>,
  issues: Issue[],
  d: number,
): number[] {
  const found: number[] = [];
  ids.forEach((groupId, k) => {
    const path = [AT, d, field, k];
    const gi = index.get(groupId);
    const group = gi === undefined ? undefined : groups[gi];
    if (gi === undefined || !group) {
      issues.push({
        path,
        message: `detector ${detector.id} ${field === "calls" ? "calls" : "extends"} unknown group ${groupId} (groups: ${groups.map((g) => g.id).join(", ")})`,
      });
    } else if (group.kind !== detector.kind) {
      issues.push({ path, message: wrongKind(detector.id, detector.kind, group.id, groups) });
    } else if (found.includes(gi)) {
      issues.push({ path, message: `detector ${detector.id} names group ${groupId} twice in ${field}` });
    } else {
      found.push(gi);
    }
  });
  return found;
}

function wrongKind(id: string, kind: DetectorKind, groupId: string, groups: readonly SignalGroup[]): string {
  const mine = groups.filter((g) => g.kind === kind).map((g) => g.id);
  const choice = mine.length > 0 ? `${kind} groups: ${mine.join(", ")}` : `the intersection has no ${kind} groups`;
  return kind === "pedestrian"
    ? `detector ${id} is a pedestrian push button and ${groupId} is a vehicle group: a button calls pedestrian groups only (${choice}); for a vehicle detector write kind: vehicle`
    : `detector ${id} is a vehicle detector and ${groupId} is a pedestrian group: a vehicle detector calls and extends vehicle groups only (${choice}); for a push button write kind: pedestrian`;
}
