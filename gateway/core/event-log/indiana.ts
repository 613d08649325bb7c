/**
 * The event codes of the Indiana Traffic Signal Hi Resolution Data Logger Enumerations (Purdue/INDOT
 * 2012, revised by pooled-fund study TPF-5(377)) that a greenwave gateway writes. A row of the log is
 * (timestamp to 0.1 s, device, event code, parameter); ATSPM and its peers read exactly that.
 * docs/event-log.md says which greenwave happening writes which code, and what the parameter holds.
 */
export const IndianaCode = {
  PHASE_BEGIN_GREEN: 1,
  PHASE_GAP_OUT: 4,
  PHASE_MAX_OUT: 5,
  PHASE_FORCE_OFF: 6,
  PHASE_GREEN_TERMINATION: 7,
  PHASE_BEGIN_YELLOW_CLEARANCE: 8,
  PHASE_END_YELLOW_CLEARANCE: 9,
  PHASE_BEGIN_RED_CLEARANCE: 10,
  PHASE_END_RED_CLEARANCE: 11,
  PEDESTRIAN_BEGIN_WALK: 21,
  PEDESTRIAN_BEGIN_CLEARANCE: 22,
  PEDESTRIAN_BEGIN_SOLID_DONT_WALK: 23,
  DETECTOR_OFF: 81,
  DETECTOR_ON: 82,
  DETECTOR_RESTORED: 83,
  DETECTOR_FAULT_OTHER: 84,
  DETECTOR_FAULT_WATCHDOG: 85,
  DETECTOR_FAULT_OPEN_LOOP: 86,
  DETECTOR_FAULT_SHORTED_LOOP: 87,
  DETECTOR_FAULT_EXCESSIVE_CHANGE: 88,
  PED_DETECTOR_OFF: 89,
  PED_DETECTOR_ON: 90,
  PED_DETECTOR_FAILED: 91,
  PED_DETECTOR_RESTORED: 92,
  COORD_PATTERN_CHANGE: 131,
  CYCLE_LENGTH_CHANGE: 132,
  OFFSET_LENGTH_CHANGE: 133,
  /** The local cycle's zero point (the start of stage 0): greenwave's cycle boundary. */
  COORD_CYCLE_STATE_CHANGE: 150,
  /** The coordinated stage's end of green: the point the coordinated phase yields. */
  COORDINATED_PHASE_YIELD_POINT: 151,
  UNIT_FLASH_STATUS_CHANGE: 173,
  POWER_FAILURE_DETECTED: 182,
  POWER_RESTORED: 184,
} as const;
export type IndianaCode = (typeof IndianaCode)[keyof typeof IndianaCode];

/**
 * The parameter of code 173, as NTCIP 1202's unitFlashStatus counts it: why the unit is (or is no
 * longer) in flash.
 */
export const FlashStatus = {
  OTHER: 1,
  NOT_FLASH: 2,
  /** Flash that a time-of-day schedule asked for. */
  AUTOMATIC: 3,
  /** An operator's flash command. */
  LOCAL_MANUAL: 4,
  /** A latched fault: the controller's own conflict, lamp or communication monitor. */
  FAULT_MONITOR: 5,
  STARTUP: 7,
} as const;
export type FlashStatus = (typeof FlashStatus)[keyof typeof FlashStatus];

/** The parameter of 182 (power failure detected) for an orderly stop of the gateway, not a power cut. */
export const STOP_PARAMETER = 1;

/** One row of the high-resolution log. */
export interface HiResEvent {
  /** Wall-clock UTC milliseconds, a multiple of 100 (the log's resolution). */
  readonly atMs: number;
  readonly code: number;
  /** 0–255: a phase, pattern, cycle or offset in seconds, a flash status... (per code). */
  readonly param: number;
}

/** The log's resolution. */
export const HIRES_RESOLUTION_MS = 100;

/**
 * To the nearest 0.1 s: the tick that writes the lamps falls anywhere in a 0.1 s slot, and the
 * module applies them a few milliseconds later; rounding keeps a row within 0.05 s of the tick.
 */
export function toResolution(wallMs: number): number {
  return Math.round(wallMs / HIRES_RESOLUTION_MS) * HIRES_RESOLUTION_MS;
}

/** A parameter is one byte in the log's layout; a larger value (a cycle of 300 s) is clamped and said. */
export function clampParam(value: number): number {
  return Math.max(0, Math.min(255, Math.round(value)));
}

const NAMES: Readonly<Record<number, string>> = {
  1: "phase begin green",
  7: "phase green termination",
  8: "phase begin yellow clearance",
  9: "phase end yellow clearance",
  10: "phase begin red clearance",
  11: "phase end red clearance",
  21: "pedestrian begin walk",
  22: "pedestrian begin clearance",
  23: "pedestrian begin solid don't walk",
  4: "phase gap out",
  5: "phase max out",
  6: "phase force off",
  81: "detector off",
  82: "detector on",
  83: "detector restored",
  84: "detector fault - other",
  85: "detector fault - watchdog fault",
  86: "detector fault - open loop fault",
  87: "detector fault - shorted loop fault",
  88: "detector fault - excessive change fault",
  89: "ped detector off",
  90: "ped detector on",
  91: "pedestrian detector failed",
  92: "pedestrian detector restored",
  131: "coord pattern change",
  132: "cycle length change",
  133: "offset length change",
  150: "coord cycle state change",
  151: "coordinated phase yield point",
  173: "unit flash status change",
  182: "power failure detected",
  184: "power restored",
};

export function codeName(code: number): string {
  return NAMES[code] ?? `event ${code}`;
}
