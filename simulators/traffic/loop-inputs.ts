import type { Intersection } from "../../gateway/core/model.js";
import type { LoopDetector } from "./network/index.js";

/**
 * Which of SUMO's stop-bar loops feed which of an intersection's detectors (docs/detectors.md): a loop
 * feeds the first vehicle detector of the intersection file that calls the loop's group. The loops of
 * one group thus share that detector's input, OR'd, as several loops share one detector card's
 * channel. A loop whose group no vehicle detector calls (Main St: its stage is coordinated) feeds
 * nothing; a detector no loop feeds (a push button) reads off unless something else drives it.
 *
 * Pure, and shared by what drives detectors from SUMO: the faster-than-real-time traffic run
 * (traffic-run.ts, straight into each controller) and the live demo (live-traffic.ts, through the
 * detector's discrete input on the simulated module).
 */
export interface DetectorLoops {
  /** By detector index (the intersection's `detectors` order): the ids of the stop-bar loops that feed it, sorted. */
  readonly byDetector: readonly (readonly string[])[];
  /** The intersection's stop-bar loops that feed no detector. */
  readonly unwired: readonly LoopDetector[];
}

export function stopBarLoopsByDetector(
  intersection: Intersection,
  loops: readonly LoopDetector[],
): DetectorLoops {
  const detectors = intersection.detectors ?? [];
  const byDetector: string[][] = detectors.map(() => []);
  const unwired: LoopDetector[] = [];
  const stopBars = loops
    .filter((l) => l.intersectionId === intersection.id && l.purpose === "stop-bar")
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const loop of stopBars) {
    const d = detectors.findIndex((det) => det.kind === "vehicle" && det.calls.includes(loop.group));
    if (d < 0) unwired.push(loop);
    else byDetector[d]?.push(loop.id);
  }
  return { byDetector, unwired };
}
