import {
  type Aspect,
  type Intersection,
  isActive,
  type Lamps,
  lampsAreActive,
  lampsAreDark,
  sameLamps,
} from "./model.js";
import type { Now } from "./time.js";
import { formatSeconds } from "./units.js";

/**
 * The software conflict monitor: a pure state machine that checks every commanded output before it is
 * written, and every readback after. Any violation latches a fault; only an operator reset clears it.
 * The latch is plain data so that the shell can force-write it and restore it after a restart.
 */

export type FaultKind =
  | "conflict"
  | "min-go-cut"
  | "clearance-cut"
  | "red-clearance-cut"
  | "go-without-clearance"
  | "red-fail"
  | "feedback-mismatch"
  | "observed-conflict"
  | "device-lost"
  /** The gateway's store was lost, emptied or replaced although it had run before (gateway/store/durable-latch.ts). */
  | "store-lost"
  | "internal";

export interface FaultLatch {
  readonly kind: FaultKind;
  readonly groups: readonly string[];
  /** What happened, in words an operator can act on. */
  readonly message: string;
  readonly atWallMs: number;
}

interface CommandedHistory {
  readonly aspect: Aspect;
  readonly sinceMs: number;
}

export interface MonitorState {
  readonly intersection: Intersection;
  readonly latch: FaultLatch | null;
  readonly commanded: readonly CommandedHistory[] | null;
  /** When each group last stopped showing an active aspect (−∞ if it never did). */
  readonly inactiveSinceMs: readonly number[];
  readonly darkSinceMs: readonly (number | null)[];
  readonly mismatchSinceMs: readonly (number | null)[];
  readonly conflictSinceMs: number | null;
}

export interface MonitorVerdict {
  readonly state: MonitorState;
  /** Set when this check latched a fault. */
  readonly fault: FaultLatch | null;
}

export function startMonitor(intersection: Intersection, restoredLatch: FaultLatch | null): MonitorState {
  const none = intersection.groups.map(() => null);
  return {
    intersection,
    latch: restoredLatch,
    commanded: null,
    inactiveSinceMs: intersection.groups.map(() => Number.NEGATIVE_INFINITY),
    darkSinceMs: none,
    mismatchSinceMs: none,
    conflictSinceMs: null,
  };
}

/** An operator reset: clears the latch and forgets all history, as a fresh start-up does. */
export function resetMonitor(state: MonitorState): MonitorState {
  return startMonitor(state.intersection, null);
}

/** Latches a fault found outside the monitor (a lost device, a broken invariant). */
export function latchFault(state: MonitorState, fault: FaultLatch): MonitorVerdict {
  if (state.latch) return { state, fault: null };
  return { state: { ...state, latch: fault }, fault };
}

/** Checks the aspects the sequencer commands, before they are written to the lamps. */
export function checkCommanded(state: MonitorState, aspects: readonly Aspect[], now: Now): MonitorVerdict {
  if (state.latch) return { state, fault: null };
  const t = now.monoMs;
  const { groups, permissive } = state.intersection;
  const fault = (kind: FaultKind, ids: string[], message: string): MonitorVerdict => {
    const latch: FaultLatch = { kind, groups: ids, message, atWallMs: now.wallMs };
    return { state: { ...state, latch }, fault: latch };
  };

  for (let a = 0; a < aspects.length; a++) {
    if (!isActive(aspects[a] as Aspect)) continue;
    for (let b = a + 1; b < aspects.length; b++) {
      if (isActive(aspects[b] as Aspect) && !permissive[a]?.[b]) {
        const ga = groups[a]?.id ?? `#${a}`;
        const gb = groups[b]?.id ?? `#${b}`;
        return fault(
          "conflict",
          [ga, gb],
          `commanded conflicting indications: ${ga} ${aspects[a]} and ${gb} ${aspects[b]} are not permissive`,
        );
      }
    }
  }

  const previous = state.commanded;
  const commanded: CommandedHistory[] = [];
  const inactiveSinceMs = [...state.inactiveSinceMs];
  for (let gi = 0; gi < aspects.length; gi++) {
    const aspect = aspects[gi] as Aspect;
    const before = previous?.[gi];
    if (!before || before.aspect === aspect) {
      commanded.push(before ?? { aspect, sinceMs: t });
      continue;
    }
    const problem = transitionProblem(state, gi, before, aspect, t);
    if (problem) return fault(problem.kind, problem.groups, problem.message);
    if (isActive(before.aspect) && !isActive(aspect)) inactiveSinceMs[gi] = t;
    commanded.push({ aspect, sinceMs: t });
  }
  return { state: { ...state, commanded, inactiveSinceMs }, fault: null };
}

interface Problem {
  readonly kind: FaultKind;
  readonly groups: string[];
  readonly message: string;
}

function transitionProblem(
  state: MonitorState,
  gi: number,
  before: CommandedHistory,
  aspect: Aspect,
  t: number,
): Problem | null {
  const g = state.intersection.groups[gi];
  if (!g) return { kind: "internal", groups: [], message: `group index ${gi} out of range` };
  const shown = t - before.sinceMs;
  const from = before.aspect;
  const mustBe = (allowed: readonly Aspect[]): Problem | null =>
    allowed.includes(aspect)
      ? null
      : {
          kind: from === "yellow" || from === "ped-clearance" ? "clearance-cut" : "go-without-clearance",
          groups: [g.id],
          message: `group ${g.id} went from ${from} to ${aspect}; only ${allowed.join(" or ")} may follow ${from}`,
        };
  switch (from) {
    case "green":
    case "walk": {
      const wrong = mustBe(from === "green" ? ["yellow"] : ["ped-clearance"]);
      if (wrong) return wrong;
      if (shown < g.minGoMs) {
        return {
          kind: "min-go-cut",
          groups: [g.id],
          message: `group ${g.id} ended ${from} after ${formatSeconds(shown)}, shorter than its minimum ${formatSeconds(g.minGoMs)}`,
        };
      }
      return null;
    }
    case "yellow":
    case "ped-clearance": {
      const wrong = mustBe(from === "yellow" ? ["red"] : ["dont-walk"]);
      if (wrong) return wrong;
      if (shown < g.clearanceMs) {
        return {
          kind: "clearance-cut",
          groups: [g.id],
          message: `group ${g.id} showed ${from} for ${formatSeconds(shown)}, shorter than its ${formatSeconds(g.clearanceMs)} clearance`,
        };
      }
      return null;
    }
    case "yellow-flash":
      return mustBe(["red"]);
    default:
      break;
  }
  if (!isActive(aspect)) return null;
  // A group starts to go: every conflicting group must have finished its red clearance.
  const { groups, permissive } = state.intersection;
  for (let h = 0; h < groups.length; h++) {
    if (h === gi || permissive[gi]?.[h]) continue;
    const other = groups[h];
    if (!other) continue;
    const redFor = t - (state.inactiveSinceMs[h] as number);
    if (redFor < other.redClearanceMs) {
      return {
        kind: "red-clearance-cut",
        groups: [g.id, other.id],
        message: `group ${g.id} started ${aspect} ${formatSeconds(redFor)} after conflicting group ${other.id} ended, before its ${formatSeconds(other.redClearanceMs)} red clearance`,
      };
    }
  }
  return null;
}

/**
 * Checks what the field reports back (lamp feedback) against what was commanded in the same tick:
 * a dark group (red fail), feedback that differs from the command, and conflicting lamps lit.
 */
export function checkObserved(
  state: MonitorState,
  observed: readonly Lamps[],
  commanded: readonly Lamps[],
  commandedAspects: readonly Aspect[],
  now: Now,
): MonitorVerdict {
  if (state.latch) return { state, fault: null };
  const t = now.monoMs;
  const { groups, permissive, monitor } = state.intersection;
  const fault = (kind: FaultKind, ids: string[], message: string): MonitorVerdict => {
    const latch: FaultLatch = { kind, groups: ids, message, atWallMs: now.wallMs };
    return { state: { ...state, latch }, fault: latch };
  };

  const darkSinceMs: (number | null)[] = [];
  const mismatchSinceMs: (number | null)[] = [];
  for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi];
    const seen = observed[gi];
    const want = commanded[gi];
    if (!g || !seen || !want) return fault("internal", [], `readback for group index ${gi} is missing`);
    const dark = lampsAreDark(seen) && commandedAspects[gi] !== "dark";
    const darkSince = dark ? (state.darkSinceMs[gi] ?? t) : null;
    if (darkSince !== null && t - darkSince >= monitor.redFailMs) {
      return fault(
        "red-fail",
        [g.id],
        `group ${g.id} showed no lamp for ${formatSeconds(t - darkSince)} while commanded ${commandedAspects[gi]}: check its lamps and load switch`,
      );
    }
    darkSinceMs.push(darkSince);
    const mismatchSince = sameLamps(seen, want) ? null : (state.mismatchSinceMs[gi] ?? t);
    if (mismatchSince !== null && t - mismatchSince >= monitor.mismatchMs) {
      return fault(
        "feedback-mismatch",
        [g.id],
        `group ${g.id} feedback ${describeLamps(seen)} differs from commanded ${describeLamps(want)} for ${formatSeconds(t - mismatchSince)}: stuck relay, dead lamp or wiring fault`,
      );
    }
    mismatchSinceMs.push(mismatchSince);
  }

  let conflictPair: [number, number] | null = null;
  for (let a = 0; a < groups.length && !conflictPair; a++) {
    if (!lampsAreActive(observed[a] as Lamps, (groups[a] as (typeof groups)[number]).kind)) continue;
    for (let b = a + 1; b < groups.length; b++) {
      if (
        lampsAreActive(observed[b] as Lamps, (groups[b] as (typeof groups)[number]).kind) &&
        !permissive[a]?.[b]
      ) {
        conflictPair = [a, b];
        break;
      }
    }
  }
  const conflictSinceMs = conflictPair ? (state.conflictSinceMs ?? t) : null;
  if (conflictPair && conflictSinceMs !== null && t - conflictSinceMs >= monitor.conflictMs) {
    const [a, b] = conflictPair;
    const ga = groups[a]?.id ?? `#${a}`;
    const gb = groups[b]?.id ?? `#${b}`;
    return fault(
      "observed-conflict",
      [ga, gb],
      `field shows conflicting indications on ${ga} and ${gb} for ${formatSeconds(t - conflictSinceMs)}`,
    );
  }
  return { state: { ...state, darkSinceMs, mismatchSinceMs, conflictSinceMs }, fault: null };
}

export function describeLamps(l: Lamps): string {
  const lit = [l.red && "red", l.yellow && "yellow", l.green && "green"].filter(Boolean);
  return lit.length === 0 ? "dark" : lit.join("+");
}
