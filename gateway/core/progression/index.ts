/**
 * Green-wave arithmetic (docs/green-wave.md): pure and browser-safe (no node: imports, no clock), for
 * the CLI's `plan check --corridor` and the web console's time-space diagram.
 */
export { type CycleWindow, EPSILON_MS } from "./arcs.js";
export {
  type Band,
  type BandReport,
  corridorBands,
  type Direction,
  MAX_SITES,
  MAX_WINDOWS_PER_SITE,
  type ProgressionInput,
  ProgressionInputError,
  type ProgressionSite,
  travelTimes,
} from "./bands.js";
export {
  bestOffsets,
  DEFAULT_RESOLUTION_MS,
  OFFSET_OBJECTIVE,
  type OffsetSearch,
  type OffsetSearchOptions,
} from "./offsets.js";
export { MAX_OBSERVED_GREENS, type ObservedBand, type ObservedSite, observedBands } from "./observed.js";
export { cycleStartMs, greenWindows, planSite, throughGroup } from "./plan-windows.js";
