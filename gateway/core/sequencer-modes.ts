import type { SequencerMode, SequencerState } from "./sequencer-types.js";
import type { Now } from "./time.js";

/**
 * How the sequencer changes mode: entering one (every group at rest), and the requests that the next
 * tick applies — a clean stop (final) and an operator's flash — with the clearing modes each leads
 * through, so that no running interval is ever cut.
 */

export function enterMode(state: SequencerState, mode: SequencerMode, now: Now): SequencerState {
  return {
    ...state,
    mode,
    modeSinceMs: now.monoMs,
    groups: state.groups.map(() => ({ interval: "rest", sinceMs: now.monoMs })),
    next: null,
  };
}

/** Applies a stop or an operator's flash request; at a tick, so that the outputs are written and checked. */
export function applyRequests(s: SequencerState, now: Now): SequencerState {
  if (s.stopRequested) return applyStop({ ...s, flashRequest: null }, now);
  if (s.flashRequest === null) return s;
  const cleared: SequencerState = { ...s, flashRequest: null };
  if (s.flashRequest === "leave") {
    switch (s.mode) {
      case "flash":
        return enterMode(cleared, "startup-all-red", now);
      case "clearing-to-flash":
        // Still clearing towards flash: the clearances run on, to all-red instead (never dropped).
        return { ...cleared, mode: "clearing-to-all-red", modeSinceMs: now.monoMs };
      default:
        return cleared;
    }
  }
  switch (s.mode) {
    case "running":
    case "startup-clearing":
    case "clearing-to-all-red":
      return { ...cleared, mode: "clearing-to-flash", modeSinceMs: now.monoMs, next: null };
    case "startup-flash":
    case "startup-all-red":
      return enterMode(cleared, "flash", now);
    default:
      return cleared;
  }
}

function applyStop(s: SequencerState, now: Now): SequencerState {
  switch (s.mode) {
    case "running":
    case "startup-clearing":
    case "clearing-to-flash":
    case "clearing-to-all-red":
      return { ...s, mode: "clearing-to-stop", modeSinceMs: now.monoMs, next: null };
    case "startup-flash":
    case "startup-all-red":
    case "flash":
      // Nothing is running whose interval could be cut: all-red at once.
      return enterMode(s, "stopped", now);
    case "clearing-to-stop":
    case "stopped":
      return s;
  }
}

/** The modes that end every running interval through its clearances, and where each one leads. */
export const CLEARING_TARGET: Partial<Record<SequencerMode, SequencerMode>> = {
  "clearing-to-flash": "flash",
  "startup-clearing": "startup-flash",
  "clearing-to-all-red": "startup-all-red",
  "clearing-to-stop": "stopped",
};

export function isClearing(mode: SequencerMode): boolean {
  return CLEARING_TARGET[mode] !== undefined;
}
