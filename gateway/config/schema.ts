import { z } from "zod";
import { isKnownTimeZone } from "../core/time/zone.js";
import { identifier, quoted } from "./identifier.js";
import { scheduleFileSchema } from "./schedule-schema.js";
import { demandFileSchema, trafficSchema } from "./traffic-schema.js";
import { zoneHint } from "./zone-hint.js";
import { keyringFileSchema } from "./keyring-schema.js";

/**
 * The shape of greenwave's configuration files. Durations are in seconds (a field's name says so),
 * the field limits come from the field's practice (MUTCD, ITE, NEMA TS2); cross-field rules (splits
 * against the cycle, stages against the permissive matrix) are checked after the shape.
 */

export { identifier, RESERVED_IDS } from "./identifier.js";

const seconds = (min: number, max: number) =>
  z.number().min(min, `must be at least ${min} s`).max(max, `must be at most ${max} s`);

export const vehicleGroupSchema = z.strictObject({
  id: identifier,
  kind: z.literal("vehicle"),
  description: z.string().max(200).optional(),
  /** Minimum green: ITE practice is 4–15 s. */
  minGreenSeconds: seconds(3, 120),
  /** Yellow change interval: 3–6 s (MUTCD / ITE). */
  yellowSeconds: seconds(3, 6),
  /** Red clearance (all-red) after yellow: up to 6 s. */
  redClearanceSeconds: seconds(0, 6),
  /** What the group shows in scheduled flash: red (default) or yellow (the main street). */
  flash: z.enum(["red", "yellow"]).default("red"),
});

export const pedestrianGroupSchema = z.strictObject({
  id: identifier,
  kind: z.literal("pedestrian"),
  description: z.string().max(200).optional(),
  /** WALK: at least 7 s (MUTCD 4E.06). */
  walkSeconds: seconds(7, 120),
  /** Flashing DON'T WALK: sized for the crossing. */
  pedestrianClearanceSeconds: seconds(3, 120),
  /** Steady DON'T WALK buffer before conflicting traffic may go. */
  redClearanceSeconds: seconds(0, 6).default(0),
  /** Curb-to-curb crossing length; when given, the clearance must cover it at 1.07 m/s (3.5 ft/s). */
  crossingMeters: z.number().positive().max(200).optional(),
});

export const groupSchema = z.discriminatedUnion("kind", [vehicleGroupSchema, pedestrianGroupSchema]);

export const intersectionFileSchema = z.strictObject({
  kind: z.literal("intersection"),
  id: identifier,
  name: z.string().min(1).max(200),
  /** The corridor file, relative to this file. */
  corridor: z.string().min(1),
  /** The plan (from the corridor's plans directory) the intersection runs until it is told otherwise. */
  initialPlan: identifier,
  groups: z.array(groupSchema).min(2).max(32),
  /** For each group, the groups that may show green/yellow/walk with it. Symmetric: one side suffices. */
  permissive: z.record(identifier, z.array(identifier)).default({}),
  /**
   * The phase number of each group in the high-resolution event log (docs/event-log.md): the event
   * parameter ATSPM tools read. Absent: the groups in file order, numbered from 1.
   */
  phases: z.record(identifier, z.number().int().min(1).max(255)).optional(),
  startup: z
    .strictObject({
      flashSeconds: seconds(3, 60).default(6),
      allRedSeconds: seconds(2, 30).default(4),
    })
    .default({ flashSeconds: 6, allRedSeconds: 4 }),
  flash: z
    .strictObject({
      flashesPerMinute: z.number().int().min(50).max(60).default(55),
    })
    .default({ flashesPerMinute: 55 }),
  monitor: z
    .strictObject({
      conflictMs: z.number().int().min(100).max(1000).default(300),
      redFailMs: z.number().int().min(700).max(2000).default(800),
      mismatchMs: z.number().int().min(700).max(3000).default(1000),
    })
    .default({ conflictMs: 300, redFailMs: 800, mismatchMs: 1000 }),
  /** Field devices driving the lamps (Modbus I/O modules). */
  devices: z
    .array(z.lazy(() => deviceSchema))
    .max(8)
    .default([]),

  /**
   * For traffic simulation (docs/traffic-network.md): lanes per approach and which group serves which
   * movement. Absent: defaults by the groups' names.
   */
  traffic: trafficSchema.optional(),

  /** Vehicle detectors and pedestrian push buttons on the devices' discrete inputs (docs/detectors.md). */
  detectors: z
    .array(z.lazy(() => detectorSchema))
    .max(255)
    .default([]),
});

/**
 * One detector input: a loop card's, a video or radar detector's contact, or a pedestrian push button.
 * Cross-field rules (its groups and their kinds, its device's inputs, unique ids, inputs and numbers)
 * are checked by the loader.
 */
export const detectorSchema = z.strictObject({
  id: identifier,
  /** vehicle (a presence detector) or pedestrian (a push button). */
  kind: z.enum(["vehicle", "pedestrian"]).default("vehicle"),
  /** The device (of this file's devices) whose discrete input it is. */
  device: identifier,
  /** The input channel on that module, 0-based like the lamp channels: the n-th input its feedback read returns. */
  input: z
    .number()
    .int("must be a whole channel number")
    .min(0, "must be at least 0 (channels count from 0)")
    .max(255, "must be at most 255 (a module reads at most 256 inputs)"),
  /** The groups it places calls on. */
  calls: z.array(identifier).min(1, "must name at least one group").max(32),
  /** The groups whose green it extends (vehicle detectors only); default: the groups it calls. */
  extends: z.array(identifier).max(32).optional(),
  /** The input must be on this long, while its group is not green, before it calls. */
  delaySeconds: seconds(0, 60).default(0),
  /** Carry-over: the extension holds this long after the input goes off. */
  extendSeconds: seconds(0, 10).default(0),
  /** locking: a call stays until its group is served, even when the vehicle leaves. */
  memory: z.enum(["locking", "non-locking"]).default("locking"),
  /** What its called groups go to while it is failed. */
  onFailure: z.enum(["max-recall", "min-recall"]).default("max-recall"),
  /** The checks that mark it failed; 0 turns one off. */
  diagnostics: z
    .strictObject({
      /** No on-transition for this long: failed. Default 60 min. */
      noActivityMinutes: z
        .number()
        .min(0, "must be at least 0 minutes")
        .max(10_080, "must be at most 10080 minutes (a week)")
        .optional(),
      /** On without a break for this long: failed. Default 180 s (vehicle) / 60 s (pedestrian). */
      maxPresenceSeconds: seconds(0, 3600).optional(),
      /** More on-transitions than this within 60 s: failed (chattering). Default 120. */
      chatterPerMinute: z
        .number()
        .int("must be a whole number of on-transitions")
        .min(0, "must be at least 0")
        .max(1200, "must be at most 1200 on-transitions a minute")
        .optional(),
    })
    .default({}),
  /** Its number in the event log (codes 81/82, 89/90), unique among detectors of its kind. Default: its position + 1. */
  number: z.number().int("must be a whole number").min(1, "must be at least 1").max(255, "must be at most 255").optional(),
});

const channel = z.number().int().min(0).max(255);

/** Which module channel drives (and, with feedback, reports) each lamp of a signal group. */
export const lampChannelsSchema = z.partialRecord(
  z.enum(["red", "yellow", "green", "dontWalk", "walk"], "must be a lamp: red, yellow, green (vehicle) or dontWalk, walk (pedestrian)"),
  channel,
);

export const linkSchema = z.union([
  z.strictObject({
    /** host:port of a Modbus TCP module or gateway. */
    tcp: z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, "must be host:port"),
  }),
  z.strictObject({
    /** A serial port; prefer a stable path such as /dev/serial/by-id/…. */
    serial: z.string().min(1),
    /** Overrides the profile's line settings. */
    baudRate: z.number().int().optional(),
    parity: z.enum(["none", "even", "odd"]).optional(),
    stopBits: z.union([z.literal(1), z.literal(2)]).optional(),
  }),
]);

export const deviceSchema = z.strictObject({
  id: identifier,
  /** The device profile file, relative to the intersection file. */
  profile: z.string().min(1),
  link: linkSchema,
  /** Overrides the profile's unit id (several modules share an RS-485 line). */
  unitId: z.number().int().min(1).max(247).optional(),
  /** Per request; no answer by then is a timeout. */
  timeoutMs: z.number().int().min(20).max(5000).default(250),
  /** Retries of a failed request before the tick's exchange counts as failed. */
  retries: z.number().int().min(0).max(3).default(1),
  /** No good exchange with the module for this long latches a fault (flash). */
  faultWindowMs: z.number().int().min(200).max(10_000).default(1000),
  /** Host watchdog timeout written to modules that have one: a silent gateway for this long makes them fall to the safe state. */
  watchdogMs: z.number().int().min(200).max(60_000).default(1000),
  channels: z.record(identifier, lampChannelsSchema),
});

/** The register map of a Modbus I/O module. */
export const deviceProfileFileSchema = z.strictObject({
  kind: z.literal("device-profile"),
  id: identifier,
  description: z.string().max(300).optional(),
  /** Number of digital outputs (relays). */
  outputs: z.number().int().min(1).max(256),
  /** Coil address of output channel 0. */
  firstCoil: z.number().int().min(0).max(65_535).default(0),
  /** How outputs are written: one FC15 for all, or one FC05 per changed coil. */
  writeFunction: z.enum(["fc15", "fc05"]).default("fc15"),
  /** Where lamp feedback is read: discrete inputs (FC02, real lamp sensing), the coils themselves (FC01), or nowhere. */
  feedback: z.discriminatedUnion("source", [
    z.strictObject({
      source: z.literal("discrete-inputs"),
      firstInput: z.number().int().min(0).max(65_535).default(0),
      count: z.number().int().min(1).max(256),
    }),
    z.strictObject({ source: z.literal("coils") }),
    z.strictObject({ source: z.literal("none") }),
  ]),
  unitId: z.number().int().min(1).max(247).default(1),
  serial: z
    .strictObject({
      baudRate: z
        .union([1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200].map((b) => z.literal(b)))
        .default(9600),
      dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
      parity: z.enum(["none", "even", "odd"]).default("none"),
      stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
    })
    .default({ baudRate: 9600, dataBits: 8, parity: "none", stopBits: 1 }),
  /**
   * The module's host watchdog, where it has one: if the master stops writing for the timeout, the
   * module sets its outputs to the safe state by itself.
   */
  watchdog: z
    .strictObject({
      /** Holding register that takes the timeout; 0 disables the watchdog. */
      timeoutRegister: z.number().int().min(0).max(65_535),
      /** What one unit of the timeout register means. */
      timeoutUnitMs: z.number().int().min(1).max(10_000),
      /** First of ceil(outputs / 16) holding registers holding the safe-state bit mask (bit n = channel n). */
      safeStateRegister: z.number().int().min(0).max(65_535),
    })
    .nullable()
    .default(null),
});

export const corridorFileSchema = z.strictObject({
  kind: z.literal("corridor"),
  id: identifier,
  name: z.string().min(1).max(200),
  timeReference: z
    .strictObject({
      /** The daily sync point from which offsets are counted, local time HH:MM:SS. */
      dailySync: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/, "must be HH:MM:SS"),
      /**
       * The corridor's time zone, an IANA name (Europe/Berlin, America/New_York): the sync point and
       * the schedules follow its daylight-saving time.
       */
      timeZone: z
        .string()
        .max(64)
        .refine(isKnownTimeZone, {
          error: (issue) =>
            `unknown time zone ${quoted(issue.input)}: name an IANA time zone such as Europe/Berlin, America/New_York or UTC${zoneHint(String(issue.input))}`,
        })
        .optional(),
      /**
       * Older: a fixed offset from UTC, ±HH:MM (+00:00 when neither it nor timeZone is given). A fixed
       * offset does not follow daylight-saving time: prefer timeZone.
       */
      utcOffset: z
        .string()
        .regex(/^[+-](0\d|1[0-4]):[0-5]\d$/, "must be ±HH:MM")
        .optional(),
    })
    .refine((t) => t.timeZone === undefined || t.utcOffset === undefined, {
      path: ["utcOffset"],
      error: "give timeZone or utcOffset, not both: timeZone already says the offset at every date; remove utcOffset",
    }),
  /** Design speed of the green wave, for documentation and checks. */
  progressionSpeedKmh: z.number().min(10).max(120).optional(),
  /** Plan files live here, relative to this file. */
  plansDirectory: z.string().min(1).default("plans"),
  intersections: z
    .array(
      z.strictObject({
        id: identifier,
        /** The intersection file, relative to this file. */
        file: z.string().min(1),
        /** Distance from the previous intersection along the corridor (0 for the first). */
        distanceMeters: z.number().min(0).max(20_000),
      }),
    )
    .min(1)
    .max(256),
});

export const correctionSchema = z.discriminatedUnion("mode", [
  z.strictObject({ mode: z.literal("dwell"), maxDwellPercent: z.number() }),
  z.strictObject({
    mode: z.literal("shortway"),
    maxLengthenPercent: z.number(),
    maxShortenPercent: z.number(),
  }),
]);

/**
 * How a non-coordinated stage is served under actuated-coordinated control. Cross-field rules (not on
 * the coordinated stage, passage within max green, min within max, the split holding min green and the
 * clearances) are checked when the plan is compiled for its intersection.
 */
export const stageActuationSchema = z.strictObject({
  minGreenSeconds: seconds(1, 120),
  /** Passage (gap) time: the stage gaps out when no vehicle extends it for this long. */
  passageSeconds: seconds(0, 30),
  maxGreenSeconds: seconds(1, 255),
  /** min/max: the stage is served every cycle (max: to its force-off); none: only when called. */
  recall: z.enum(["none", "min", "max"]).default("none"),
  /** Its pedestrian groups walk every cycle; otherwise only when a push button called them. */
  pedestrianRecall: z.boolean().default(false),
});

export const planPartSchema = z.strictObject({
  offsetSeconds: z.number(),
  offsetReference: z.enum(["start-of-green", "end-of-green"]).default("start-of-green"),
  coordinatedStage: identifier,
  correction: correctionSchema,
  stages: z
    .array(
      z.strictObject({
        id: identifier,
        groups: z.array(identifier),
        splitSeconds: z.number(),
        /** A non-coordinated stage of an actuated-coordinated plan (docs/detectors.md). */
        actuated: stageActuationSchema.optional(),
      }),
    )
    .max(16),
});

export const planFileSchema = z.strictObject({
  kind: z.literal("plan"),
  id: identifier,
  version: z.number().int().min(1),
  corridor: identifier,
  description: z.string().max(500).optional(),
  /** The pattern number the high-resolution event log writes when this plan takes effect (code 131). */
  pattern: z.number().int().min(1).max(253).optional(),
  cycleSeconds: z.number(),
  intersections: z.record(identifier, planPartSchema),
});

export type IntersectionFile = z.output<typeof intersectionFileSchema>;
export type CorridorFile = z.output<typeof corridorFileSchema>;
export type PlanFile = z.output<typeof planFileSchema>;
export type PlanPartFile = z.output<typeof planPartSchema>;
export type DeviceFile = z.output<typeof deviceSchema>;
export type DetectorFile = z.output<typeof detectorSchema>;
export type StageActuationFile = z.output<typeof stageActuationSchema>;
export type DeviceProfileFile = z.output<typeof deviceProfileFileSchema>;

export const fileSchemas = {
  intersection: intersectionFileSchema,
  corridor: corridorFileSchema,
  plan: planFileSchema,
  "device-profile": deviceProfileFileSchema,
  schedule: scheduleFileSchema,
  demand: demandFileSchema,
  keyring: keyringFileSchema,
} as const;

export type FileKind = keyof typeof fileSchemas;
