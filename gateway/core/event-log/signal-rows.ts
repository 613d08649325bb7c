import type { DetectorFailureReason } from "../detectors.js";
import { type Intersection, phaseNumber } from "../model.js";
import type { SignalEvent } from "../sequencer-types.js";
import { clampParam, type HiResEvent, IndianaCode, toResolution } from "./indiana.js";

/**
 * The event-log rows of what the controller reports rather than writes: an actuated stage's gap-out,
 * max-out or force-off (4/5/6, one row per vehicle phase of the stage), and the detectors — on and
 * off (81/82, push buttons 89/90), failed (84–88 by the diagnostic, buttons 91) and restored (83/92).
 * The parameter is the phase number, or the detector's number from the intersection file.
 */
export function signalRows(intersection: Intersection, event: SignalEvent, wallMs: number): HiResEvent[] {
  const atMs = toResolution(wallMs);
  switch (event.type) {
    case "stage-terminated": {
      const code = {
        "gap-out": IndianaCode.PHASE_GAP_OUT,
        "max-out": IndianaCode.PHASE_MAX_OUT,
        "force-off": IndianaCode.PHASE_FORCE_OFF,
      }[event.reason];
      const phases = [...new Set(event.groups.map((g) => phaseNumber(intersection, g)))];
      return phases.map((phase) => ({ atMs, code, param: clampParam(phase) }));
    }
    case "detector": {
      const d = intersection.detectors?.[event.detector];
      if (!d) return [];
      const code =
        d.kind === "vehicle"
          ? event.on
            ? IndianaCode.DETECTOR_ON
            : IndianaCode.DETECTOR_OFF
          : event.on
            ? IndianaCode.PED_DETECTOR_ON
            : IndianaCode.PED_DETECTOR_OFF;
      return [{ atMs, code, param: clampParam(d.number) }];
    }
    case "detector-failed": {
      const d = intersection.detectors?.[event.detector];
      if (!d) return [];
      const code = d.kind === "vehicle" ? FAULT_CODE[event.reason] : IndianaCode.PED_DETECTOR_FAILED;
      return [{ atMs, code, param: clampParam(d.number) }];
    }
    case "detector-restored": {
      const d = intersection.detectors?.[event.detector];
      if (!d) return [];
      const code = d.kind === "vehicle" ? IndianaCode.DETECTOR_RESTORED : IndianaCode.PED_DETECTOR_RESTORED;
      return [{ atMs, code, param: clampParam(d.number) }];
    }
    default:
      return [];
  }
}

/** Which of the enumeration's detector faults each diagnostic is. */
const FAULT_CODE: Readonly<Record<DetectorFailureReason, number>> = {
  /** Its module or channel does not answer. */
  "no-reading": IndianaCode.DETECTOR_FAULT_WATCHDOG,
  /** Never on: what an open loop looks like. */
  "no-activity": IndianaCode.DETECTOR_FAULT_OPEN_LOOP,
  /** Always on: what a shorted loop looks like. */
  "max-presence": IndianaCode.DETECTOR_FAULT_SHORTED_LOOP,
  chatter: IndianaCode.DETECTOR_FAULT_EXCESSIVE_CHANGE,
};
