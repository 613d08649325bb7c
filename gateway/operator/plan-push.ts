import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import mqtt, { type MqttClient } from "mqtt";
import type { LoadedCorridor, LoadedPlan } from "../config/load.js";
import { planDigest } from "../config/plan-digest.js";
import type { LoadedSchedule } from "../config/load-schedule.js";
import { scheduleBundle, scheduleBundleDigest } from "../config/schedule-bundle.js";
import { type CoordinatorConfig, DEFAULT_COORDINATOR_CONFIG } from "../core/corridor/coordinator.js";
import {
  CoordinatorHost,
  coordinatePush,
  type HaltAfter,
  type PushedChange,
  type PushResult,
} from "../shell/corridor/coordinator-host.js";
import {
  type DecisionRecord,
  decisionRecordSchema,
  decisionTopic,
  inboxFilter,
  parseCorridorMessage,
} from "../protocol/corridor-messages.js";
import { parsePayload } from "../protocol/messages.js";
import type { CoordinatorStore } from "../store/coordinator-store.js";
import { OperatorError } from "./operator-client.js";
import type { WireSignature } from "../core/corridor/plan-signature.js";
import type { LoadedKeyring } from "./keyring-file.js";

export type { PushResult } from "../shell/corridor/coordinator-host.js";

interface BrokerConnection {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string | Buffer;
  /** A client certificate and its key (PEM), for a broker that takes them (docs/mtls.md). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export interface PushOptions extends BrokerConnection {
  /** The coordinator's name: `@name` on the wire (an operator's user name, for the broker's ACL). */
  readonly name: string;
  readonly corridor: LoadedCorridor;
  readonly plan: LoadedPlan;
  /** Over a running schedule: until when this plan wins (absent: the schedule's next change). */
  readonly until?: number | "hold";
  /** The content's signature (`greenwave plan sign`), sent with the PREPARE; absent: unsigned. */
  readonly signature?: WireSignature;
  /** Earliest activation wanted (wall clock ms); rounded up to a common cycle boundary. */
  readonly atWallMs: number | null;
  /** At least this far ahead: PREPARE + COMMIT propagation + the clock-error bound. */
  readonly leadMs: number;
  readonly store: CoordinatorStore;
  /** How long to keep resending COMMIT to participants that have not acknowledged. */
  readonly ackTimeoutMs: number;
  readonly config?: Partial<CoordinatorConfig>;
  readonly now?: () => { monoMs: number; wallMs: number };
  /**
   * Fault injection for tests and drills: the coordinator dies right after sending every PREPARE, or
   * right after force-writing its commit (before any COMMIT leaves). The result's outcome is "halted".
   */
  readonly haltAfter?: HaltAfter;
}

async function connect(options: BrokerConnection, clientId: string): Promise<MqttClient> {
  try {
    const client = await mqtt.connectAsync(options.url, {
      protocolVersion: 4,
      clientId,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.cert !== undefined ? { cert: options.cert } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
    });
    (client.stream as Partial<Socket>).setNoDelay?.(true);
    client.on("connect", () => (client.stream as Partial<Socket>).setNoDelay?.(true));
    client.on("error", () => {});
    return client;
  } catch (error) {
    throw new OperatorError(
      `cannot connect to the broker at ${options.url}: ${(error as Error).message} (see --broker)`,
    );
  }
}

/** How long closing waits for the broker to acknowledge what the coordinator sent last. */
const CLOSE_WAIT_MS = 2000;

/**
 * `plan push`'s coordinator on the broker: its own connection, its inbox, its runs ticking, and the
 * committed transactions of its log resumed (a restarted coordinator finishes them).
 */
async function openCoordinator(options: RecoverOptions & { readonly haltAfter?: PushOptions["haltAfter"] }) {
  const me = `@${options.name}`;
  const corridorId = options.corridor.raw.id;
  const config = { ...DEFAULT_COORDINATOR_CONFIG, ...options.config };
  const client = await connect(
    options,
    `greenwave-coordinator-${options.name}-${randomBytes(3).toString("hex")}`,
  );
  // Publishes the broker has not acknowledged yet: closing waits for them (the last releases).
  const unacknowledged = new Set<Promise<void>>();
  const host = new CoordinatorHost(
    me,
    corridorId,
    config,
    options.store,
    (topic, payload, publishOptions) => {
      const sent = new Promise<void>((resolve) =>
        client.publish(topic, payload, { qos: 1, retain: publishOptions.retain ?? false }, () => resolve()),
      );
      unacknowledged.add(sent);
      void sent.then(() => unacknowledged.delete(sent));
    },
    options.now,
  );
  const timer = setInterval(() => host.tick(), 50);
  const close = async () => {
    clearInterval(timer);
    // Once everything sent is acknowledged, nothing is lost by closing at once: mqtt.js's orderly
    // end costs another 10 ms of every push, and this client has no will for a DISCONNECT to cancel.
    let giveUp: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(unacknowledged),
      new Promise((resolve) => (giveUp = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(giveUp);
    await client.endAsync(true).catch(() => {});
  };
  try {
    client.on("message", (topic, payload) => {
      const parsed = parseCorridorMessage(topic, payload);
      if (parsed.ok) host.receive(parsed.envelope, true);
    });
    await client.subscribeAsync(inboxFilter(corridorId, me), { qos: 1 });
  } catch (error) {
    await close();
    throw error;
  }
  // A fault-injected coordinator is about to "die": it does not also finish an older log.
  const resumed = options.haltAfter ? [] : host.resumeLog();
  return { host, resumed, close };
}

/** Finishes the committed transactions of a coordinator's log (a restarted coordinator), then pushes the plan. */
export async function pushPlan(options: PushOptions): Promise<PushResult> {
  return pushChange(options, {
    kind: "plan",
    planFile: options.plan.raw,
    digest: planDigest(options.plan.raw),
    ...(options.until !== undefined ? { until: options.until } : {}),
    ...(options.signature ? { signature: options.signature } : {}),
  });
}

export interface SchedulePushOptions extends Omit<PushOptions, "plan" | "until"> {
  readonly schedule: LoadedSchedule;
}

/** Finishes the coordinator's log (as `pushPlan`), then commits the schedule, with its plans, to every intersection. */
export async function pushSchedule(options: SchedulePushOptions): Promise<PushResult> {
  const bundle = scheduleBundle(options.schedule, options.corridor);
  return pushChange(options, {
    kind: "schedule",
    scheduleId: options.schedule.raw.id,
    version: options.schedule.raw.version,
    digest: scheduleBundleDigest(bundle),
    bundle,
    participants: options.corridor.raw.intersections.map((member) => member.id),
    ...(options.signature ? { signature: options.signature } : {}),
  });
}

export interface KeyringPushOptions extends Omit<PushOptions, "plan" | "until" | "signature"> {
  readonly keyring: LoadedKeyring;
  /** Its signatures (`greenwave keys sign`), as many as the gateways' threshold asks. */
  readonly signatures: readonly WireSignature[];
}

/**
 * `keys push`: the corridor's keyring (core/corridor/keyring.ts) committed to every intersection of the
 * corridor through the lease and two-phase commit, so that all trust the same keys from its commit on,
 * or none changes. Each gateway checks the signatures against the keys it trusts now.
 */
export async function pushKeyring(options: KeyringPushOptions): Promise<PushResult> {
  const { keyring, raw } = options.keyring;
  return pushChange(options, {
    kind: "keyring",
    version: keyring.version,
    digest: keyring.digest,
    keyringFile: raw,
    participants: options.corridor.raw.intersections.map((member) => member.id),
    signatures: options.signatures,
  });
}

export interface CancelOptions extends Omit<
  PushOptions,
  "plan" | "until" | "signature" | "atWallMs" | "leadMs"
> {
  /** The transaction whose waiting change is cancelled. */
  readonly target: string;
  /** How long to wait for the target's retained decision record. */
  readonly recordTimeoutMs?: number;
}

/**
 * `plan cancel`: a transaction, through the same two-phase commit, whose commit takes back another
 * transaction's change still waiting for its instant, at all of its intersections or at none
 * (core/corridor/plan-cancel.ts). Its participants and instant are the target's, read from the
 * target's decision record retained on the broker (its coordinator's, under the coordinator's name).
 */
export async function cancelChange(options: CancelOptions): Promise<PushResult> {
  const record = await committedRecord(options, options.target, options.recordTimeoutMs ?? 3000);
  return pushChange(
    { ...options, atWallMs: null, leadMs: 0 },
    {
      kind: "cancel",
      target: options.target,
      participants: record.participants,
      activationWallMs: record.activationWallMs,
    },
  );
}

/** The target's committed decision record, as its own coordinator retained it. */
async function committedRecord(
  options: CancelOptions,
  target: string,
  timeoutMs: number,
): Promise<DecisionRecord> {
  const corridorId = options.corridor.raw.id;
  const client = await connect(options, `greenwave-cancel-${options.name}-${randomBytes(3).toString("hex")}`);
  try {
    const found = new Promise<DecisionRecord | null>((resolve) => {
      const giveUp = setTimeout(() => resolve(null), timeoutMs);
      client.on("message", (topic, payload) => {
        const record = parsePayload(decisionRecordSchema, payload);
        const publishedBy = topic.split("/")[3];
        // Only the coordinator's own record says who took part: any other branch could say anything.
        if (!record || record.txnId !== target || record.coordinator !== publishedBy) return;
        clearTimeout(giveUp);
        resolve(record);
      });
    });
    await client.subscribeAsync(decisionTopic(corridorId, "+", target), { qos: 1 });
    const record = await found;
    if (!record)
      throw new OperatorError(
        `no decision record of transaction ${target} on the broker for corridor ${corridorId} within ${timeoutMs / 1000} s: check the id (greenwave status --wide shows each intersection's last transaction); a record is kept while the broker runs`,
      );
    if (record.outcome !== "committed")
      throw new OperatorError(`transaction ${target} was aborted: it has no change to cancel`);
    return record;
  } finally {
    await client.endAsync(true).catch(() => {});
  }
}

/** One push of any kind: the coordinator opened (its log finished first), the change coordinated, closed. */
async function pushChange(
  options: Omit<PushOptions, "plan" | "until" | "signature">,
  change: PushedChange,
): Promise<PushResult> {
  const { host, close } = await openCoordinator(options);
  try {
    return await coordinatePush(host, {
      name: options.name,
      timeReference: options.corridor.timeReference,
      change,
      atWallMs: options.atWallMs,
      leadMs: options.leadMs,
      ackTimeoutMs: options.ackTimeoutMs,
      ...(options.haltAfter ? { haltAfter: options.haltAfter } : {}),
    });
  } finally {
    await close();
  }
}

export type RecoverOptions = Omit<PushOptions, "plan" | "atWallMs" | "leadMs" | "haltAfter" | "signature"> & {
  /** Stay up at least this long answering inquiries (participants in doubt ask with back-off). */
  readonly answerForMs?: number;
};

/**
 * A restarted coordinator: finishes every committed transaction of its log for this corridor (resends
 * COMMIT until each participant acknowledged, or the ack timeout), and answers inquiries meanwhile
 * (presumed abort for what the log does not hold).
 */
export async function recoverLog(
  options: RecoverOptions,
): Promise<{ txnId: string; unacknowledged: string[] }[]> {
  const { resumed: runs, close } = await openCoordinator(options);
  try {
    let giveUp: NodeJS.Timeout | null = null;
    const answering = new Promise<void>((resolve) => setTimeout(resolve, options.answerForMs ?? 0));
    await new Promise<void>((resolve) => {
      giveUp = setTimeout(resolve, Math.max(options.ackTimeoutMs, options.answerForMs ?? 0));
      void Promise.all([...runs.map((r) => r.ended), answering]).then(() => resolve());
    });
    if (giveUp) clearTimeout(giveUp);
    return runs.map((r) => ({
      txnId: r.state.txnId,
      unacknowledged: r.state.participants.filter((id) => !r.state.acked.includes(id)),
    }));
  } finally {
    await close();
  }
}
