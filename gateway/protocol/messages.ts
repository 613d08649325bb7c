import { z } from "zod";
import { MAX_AUDIT_PAGE_EVENTS } from "../core/audit-page.js";
import { identifier } from "../config/schema.js";
import { schemaIssues } from "../config/validate.js";
import { ASPECTS } from "../core/model.js";
import { MAX_LAMP_STEP_MS, MIN_LAMP_STEP_MS } from "../core/lamp-test.js";
import { MAX_HOLD_MS } from "../core/sequencer.js";
import { COMMANDS, type CommandName, PROTOCOL_VERSION } from "./topics.js";
import { wireSignatureSchema } from "./corridor-messages.js";

/**
 * The payloads of the topic tree. Every payload is JSON with a version field `v`; everything that
 * comes in is validated here before anything acts on it.
 */

/** A command is a few hundred bytes; anything much larger is not one. */
export const MAX_COMMAND_BYTES = 4096;
/** Except `plan-push`, which carries a whole plan file (a 64-intersection plan is about 17 kB). */
export const MAX_PLAN_PUSH_BYTES = 128 * 1024;

/** Rows in one `events` reply: 2,000 rows are about 60 kB of JSON, well inside a broker's payload limit. */
export const MAX_EVENTS_COMMAND_ROWS = 2000;

const correlationId = z.string().min(1).max(64);
const operatorName = z.string().min(1).max(64);

const commandBase = {
  v: z.literal(PROTOCOL_VERSION),
  /** Correlation id: echoed in the reply (MQTT 3.1.1 has no response topic). */
  id: correlationId,
  /** Who sends it, for the audit trail. */
  by: operatorName,
};

export const commandSchemas = {
  "fault-reset": z.strictObject({ ...commandBase, reason: z.string().max(200).optional() }),
  flash: z.strictObject({ ...commandBase, on: z.boolean() }),
  /** Hold the stage shown (maintenance) for `forMs` (absent: 15 min), or release the hold. */
  hold: z.strictObject({
    ...commandBase,
    on: z.boolean(),
    forMs: z.number().int().min(1000).max(MAX_HOLD_MS).optional(),
  }),
  /**
   * The lamp walk test (core/lamp-test.ts): `start` (in scheduled flash, with `confirm: true`), `abort`,
   * or `report` (a query: the running or last test's results).
   */
  "lamp-test": z.strictObject({
    ...commandBase,
    action: z.enum(["start", "abort", "report"]),
    stepMs: z.number().int().min(MIN_LAMP_STEP_MS).max(MAX_LAMP_STEP_MS).optional(),
    confirm: z.boolean().optional(),
  }),
  status: z.strictObject(commandBase),
  "txn-resolve": z.strictObject({
    ...commandBase,
    txnId: z.string().min(1).max(100),
    outcome: z.enum(["committed", "aborted"]),
  }),
  /** Act as the coordinator of a corridor plan change (docs/corridor-protocol.md). */
  "plan-push": z.strictObject({
    ...commandBase,
    /** The plan file's content as JSON; the gateway checks it whole before it takes any lease. */
    planFile: z.unknown(),
    /** Earliest activation (wall clock ms), rounded up to a common cycle boundary. */
    atWallMs: z.number().int().nullable(),
    leadMs: z.number().int().min(1000).max(3_600_000),
    ackTimeoutMs: z.number().int().min(0).max(300_000),
    /** Over a running schedule: until when the plan wins (absent: the schedule's next change). */
    until: z.union([z.number().int(), z.literal("hold")]).optional(),
    /** `schedule`: `planFile` is a schedule bundle (config/schedule-bundle.ts): `schedule push --via`. */
    kind: z.literal("schedule").optional(),
    /** The content's signature (`greenwave plan sign`), sent on with the PREPARE; absent: unsigned. */
    signature: wireSignatureSchema.optional(),
  }),
  /** A page of the audit trail, newest first (read only, not audited: see core/audit-page.ts). */
  audit: z.strictObject({
    ...commandBase,
    beforeSeq: z.number().int().positive().nullable(),
    sinceWallMs: z.number().int().nullable(),
    limit: z.number().int().min(1).max(MAX_AUDIT_PAGE_EVENTS),
  }),
  /** A page of the high-resolution event log, oldest first (read only, not audited: docs/event-log.md). */
  events: z.strictObject({
    ...commandBase,
    afterSeq: z.number().int().min(0),
    sinceWallMs: z.number().int().nullable(),
    untilWallMs: z.number().int().nullable(),
    limit: z.number().int().min(1).max(MAX_EVENTS_COMMAND_ROWS),
  }),
} satisfies Record<CommandName, z.ZodType>;

export type Command =
  | ({ readonly name: "fault-reset" } & z.infer<(typeof commandSchemas)["fault-reset"]>)
  | ({ readonly name: "flash" } & z.infer<(typeof commandSchemas)["flash"]>)
  | ({ readonly name: "hold" } & z.infer<(typeof commandSchemas)["hold"]>)
  | ({ readonly name: "lamp-test" } & z.infer<(typeof commandSchemas)["lamp-test"]>)
  | ({ readonly name: "status" } & z.infer<(typeof commandSchemas)["status"]>)
  | ({ readonly name: "txn-resolve" } & z.infer<(typeof commandSchemas)["txn-resolve"]>)
  | ({ readonly name: "plan-push" } & z.infer<(typeof commandSchemas)["plan-push"]>)
  | ({ readonly name: "audit" } & z.infer<(typeof commandSchemas)["audit"]>)
  | ({ readonly name: "events" } & z.infer<(typeof commandSchemas)["events"]>);

export type RejectionCode = "too-large" | "not-json" | "unsupported-version" | "unknown-command" | "invalid";

export interface Rejection {
  readonly code: RejectionCode;
  readonly message: string;
  /** The correlation id, when one could be read from the payload. */
  readonly id: string | null;
}

export type CommandParse =
  { readonly ok: true; readonly command: Command } | ({ readonly ok: false } & Rejection);

function reject(code: RejectionCode, message: string, id: string | null): CommandParse {
  return { ok: false, code, message, id };
}

/** Reads and validates a command payload; never throws. */
export function parseCommand(name: string, payload: Uint8Array): CommandParse {
  const limit = name === "plan-push" ? MAX_PLAN_PUSH_BYTES : MAX_COMMAND_BYTES;
  if (payload.byteLength > limit)
    return reject("too-large", `payload of ${payload.byteLength} bytes exceeds ${limit}`, null);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (error) {
    return reject("not-json", `payload is not UTF-8 JSON: ${(error as Error).message}`, null);
  }
  const id = readCorrelationId(value);
  if (!(COMMANDS as readonly string[]).includes(name))
    return reject("unknown-command", `unknown command "${name}" (known: ${COMMANDS.join(", ")})`, id);
  const version = ownField(value, "v");
  if (version !== undefined && version !== PROTOCOL_VERSION)
    return reject(
      "unsupported-version",
      `payload version ${JSON.stringify(version)} is not supported (this gateway speaks v${PROTOCOL_VERSION})`,
      id,
    );
  const commandName = name as CommandName;
  const parsed = commandSchemas[commandName].safeParse(value);
  if (!parsed.success) return reject("invalid", describeZodIssues(parsed.error), id);
  return { ok: true, command: { name: commandName, ...parsed.data } as Command };
}

function readCorrelationId(value: unknown): string | null {
  const parsed = correlationId.safeParse(ownField(value, "id"));
  return parsed.success ? parsed.data : null;
}

/** A field of a received JSON object that it has itself, not one every object inherits. */
function ownField(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null && Object.hasOwn(value, key)
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

export function describeZodIssues(error: z.ZodError): string {
  return schemaIssues(error)
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(payload)"}: ${issue.message}`)
    .join("; ");
}

export interface Reply {
  readonly v: typeof PROTOCOL_VERSION;
  readonly id: string | null;
  readonly command: string;
  readonly ok: boolean;
  readonly at: string;
  readonly result?: unknown;
  readonly error?: { readonly code: RejectionCode | "refused"; readonly message: string };
}

export const faultSchema = z.object({
  kind: z.string(),
  message: z.string(),
  groups: z.array(z.string()),
  at: z.string(),
});

/**
 * Where a sequencing intersection is in its cycle. Published when it changes: at each stage start (a
 * few times a cycle), never each tick — a reader computes the cycle second from `startedAt`.
 */
export const cycleStatusSchema = z.object({
  /** The stage running now. */
  stage: z.string(),
  /** When the current cycle began (the gateway's clock). */
  startedAt: z.string(),
  /** This cycle's length after its offset correction. */
  lengthMs: z.number().int().positive(),
  /** At this cycle's start, how far it was from where the plan's offset puts it: positive late, negative early. */
  offsetErrorMs: z.number(),
  /** Within the in-step tolerance of the plan's offset: the green wave holds here. */
  inStep: z.boolean(),
});
export type CycleStatus = z.infer<typeof cycleStatusSchema>;

export const statusSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  corridor: identifier,
  intersection: identifier,
  name: z.string(),
  /** Position of the intersection along the corridor (0 first). */
  position: z.number().int().min(0),
  /** hold: a maintenance hold keeps the stage shown (`greenwave hold`). */
  mode: z.enum(["startup", "coordinated", "transition", "hold", "flash", "stopping", "fault"]),
  /** `digest`: the first 12 hex characters of the plan's content digest (absent: older gateway, or a plan stored before digests). */
  plan: z.object({ id: z.string(), version: z.number().int(), digest: z.string().optional() }),
  fault: faultSchema.nullable(),
  lock: z.object({ holder: z.string(), token: z.number().int() }).nullable(),
  /** outcome: in-doubt (PREPARED, waiting for the decision), committed or aborted. */
  lastTxn: z
    .object({ id: z.string(), outcome: z.string(), at: z.string(), lateByMs: z.number().optional() })
    .nullable(),
  /** null while not sequencing a plan (start-up, flash, fault, stopping); absent from older gateways. */
  cycle: cycleStatusSchema.nullable().optional(),
  /** The cabinet clock's sync state, as its time service reports it (absent: not watched). */
  clock: z
    .object({
      state: z.enum(["synchronised", "unsynchronised", "unknown"]),
      source: z.string(),
      offsetMs: z.number().nullable(),
    })
    .optional(),
  /**
   * The committed time-of-day schedule and why the plan in force runs: by the schedule (its day plan
   * and action), by a manual change over it (until when), or the schedule not yet governing; and the
   * next scheduled change. Null: no schedule committed here; absent: an older gateway.
   */
  schedule: z
    .object({
      id: z.string(),
      version: z.number().int(),
      reason: z.enum(["scheduled", "manual", "pending"]),
      dayPlan: z.string().nullable(),
      action: z.string().nullable(),
      manual: z
        .object({ plan: z.string(), by: z.string(), until: z.string().nullable(), hold: z.boolean() })
        .nullable(),
      next: z.object({ at: z.string(), dayPlan: z.string(), action: z.string() }).nullable(),
    })
    .nullable()
    .optional(),
  /** The installed release running here, and its last upgrade (absent: not an installed gateway). */
  release: z
    .object({
      version: z.string(),
      lastChange: z
        .object({
          from: z.string().nullable(),
          to: z.string(),
          outcome: z.enum(["activated", "rolled-back", "refused"]),
          why: z.string(),
          at: z.string(),
        })
        .nullable(),
    })
    .optional(),
  at: z.string(),
});
export type Status = z.infer<typeof statusSchema>;

export const availabilitySchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  online: z.boolean(),
  at: z.string().optional(),
  reason: z.string().optional(),
});
export type Availability = z.infer<typeof availabilitySchema>;

export const eventSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  corridor: identifier,
  intersection: identifier,
  /** Strictly increasing per gateway, across restarts: receivers drop duplicates by it. */
  seq: z.number().int().positive(),
  at: z.string(),
  type: z.string(),
  actor: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
});
export type GatewayEvent = z.infer<typeof eventSchema>;

/** The most events one `hires` message carries; more wait for the next message. */
export const MAX_HIRES_BATCH_EVENTS = 256;

const aspectName = z.enum(ASPECTS);

/**
 * The high-resolution event log, live (topic `…/<intersection>/hires`, QoS 0, not retained): the
 * rows written since the last message, and what every signal group shows now. A collector that misses
 * one fills the gap from the gateway's store (`greenwave events export`, or HTTP `/events?since=`) by
 * `seq`. docs/event-log.md.
 */
export const hiResBatchSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  corridor: identifier,
  intersection: identifier,
  /** The location id the export writes in its device column. */
  device: z.string().max(64),
  /** What each signal group shows after the last of these events, by group id. */
  aspects: z.record(identifier, aspectName),
  events: z
    .array(
      z.strictObject({
        /** Strictly increasing per gateway, across restarts. */
        seq: z.number().int().positive(),
        /** Wall-clock UTC ms, a multiple of 100. */
        at: z.number().int(),
        code: z.number().int().min(0).max(255),
        param: z.number().int().min(0).max(255),
      }),
    )
    .max(MAX_HIRES_BATCH_EVENTS),
  at: z.string(),
});
export type HiResBatch = z.infer<typeof hiResBatchSchema>;

/** Reads a JSON payload against a schema; null when it does not fit (the caller counts it). */
export function parsePayload<T>(schema: z.ZodType<T>, payload: Uint8Array): T | null {
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(payload).toString("utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
