import type { DecisionLogEntry } from "../../core/corridor/decision-log.js";
import { randomBytes } from "node:crypto";
import { nextCommonBoundary } from "../../core/corridor/boundary.js";
import type { TimeReference } from "../../core/time/time-reference.js";
import { bareId, scheduleKey } from "../../core/schedule/committed-change.js";
import { cancelKey } from "../../core/corridor/plan-cancel.js";
import { KEYRING_ID, KEYRING_KEY } from "../../core/corridor/keyring.js";
import { type CoordinatorConfig, startCoordinator } from "../../core/corridor/coordinator.js";
import type { WireSignature } from "../../core/corridor/plan-signature.js";
import { decisionTopic, inboxTopic } from "../../protocol/corridor-messages.js";
import { PROTOCOL_VERSION } from "../../protocol/topics.js";
import { systemClock } from "../clock.js";
import type { CommitRecord, CoordinatorLog, LoggedDecision } from "./coordinator-ports.js";
import { CoordinatorShell, type HaltAfter } from "./coordinator-shell.js";

export type { HaltAfter } from "./coordinator-shell.js";

/**
 * The coordinator host over MQTT, for `greenwave plan push` (gateway/operator) and a gateway acting as
 * coordinator (gateway/node) alike: the shared coordinator shell over the coordinator's SQLite log
 * (`CoordinatorStore`, seen here through the shape below, so that the shell does not depend on the
 * store) and a publish function.
 */

export type { DecisionLogEntry } from "../../core/corridor/decision-log.js";

/** What the host needs of the coordinator store. */
export interface DecisionLogStore {
  persistCommit(entry: Omit<DecisionLogEntry, "outcome" | "ended">, atMs: number): void;
  persistEnd(entry: Omit<DecisionLogEntry, "ended">, atMs: number): void;
  decisionOf(txnId: string): LoggedDecision | null;
  unfinished(): DecisionLogEntry[];
}

/** What a push needs of the plan file (`PlanFile` of the config schema). */
export interface PushedPlan {
  readonly id: string;
  readonly version: number;
  readonly cycleSeconds: number;
  readonly intersections: Readonly<Record<string, unknown>>;
}

export interface PushResult {
  readonly txnId: string;
  readonly corridor: string;
  /** `digest`: the plan file's content digest (absent in a reply from an older gateway). */
  readonly plan: {
    readonly id: string;
    readonly version: number;
    readonly digest?: string | undefined;
    /** A schedule push, a keyring push, or a cancel of transaction `cancels` (absent: a plan). */
    readonly kind?: "schedule" | "cancel" | "keyring";
    readonly cancels?: string;
  };
  readonly outcome: "committed" | "aborted" | "halted";
  readonly reason: string | null;
  readonly activationAt: string;
  readonly votes: readonly {
    readonly intersection: string;
    readonly vote: "yes" | "no" | "none";
    readonly reason: string | null;
  }[];
  /** Participants that had not acknowledged the commit when the command gave up waiting (they will ask). */
  readonly unacknowledged: readonly string[];
  readonly durationMs: number;
}

function newTxnId(name: string, wallMs: number): string {
  return `${name}-${wallMs.toString(36)}-${randomBytes(4).toString("hex")}`;
}

/** How a coordinator's messages leave: a plan-push command's own client, or a gateway's session. */
export type Publish = (topic: string, payload: string, options: { retain?: boolean }) => void;

/** The coordinator's SQLite decision log as the shell's log port (this corridor's, this coordinator's entries). */
export function storeCoordinatorLog(store: DecisionLogStore, me: string, corridor: string): CoordinatorLog {
  const entry = (record: CommitRecord) => ({
    txnId: record.txnId,
    corridor,
    coordinator: me,
    participants: record.participants,
    planId: record.plan.planId,
    planVersion: record.plan.version,
    activationWallMs: record.activationWallMs,
    tokens: record.tokens,
    signature: record.signature ?? null,
  });
  return {
    persistCommit: (record, atWallMs) => store.persistCommit(entry(record), atWallMs),
    persistEnd: (record, atWallMs) =>
      store.persistEnd({ ...entry(record), outcome: record.outcome }, atWallMs),
    decisionOf: (txnId) => store.decisionOf(txnId),
    unfinished: () =>
      store
        .unfinished()
        .filter((e) => e.corridor === corridor && e.coordinator === me)
        .map((e) => ({
          txnId: e.txnId,
          participants: e.participants,
          plan: { planId: e.planId, version: e.planVersion },
          activationWallMs: e.activationWallMs,
          tokens: e.tokens,
          ...(typeof e.signature === "string" ? { signature: e.signature } : {}),
        })),
  };
}

/**
 * A coordinator on the broker, whatever carries its messages: the shared coordinator shell
 * (gateway/shell/corridor/coordinator-shell.ts) over the coordinator's SQLite log and a publish
 * function. Used by `greenwave plan push` (party `@name`) and by a gateway acting as coordinator
 * (party = its id); the simulator runs the same shell over its own ports.
 */
export class CoordinatorHost extends CoordinatorShell {
  constructor(
    readonly me: string,
    readonly corridorId: string,
    readonly config: CoordinatorConfig,
    store: DecisionLogStore,
    publish: Publish,
    readonly now: () => { monoMs: number; wallMs: number } = () => systemClock.now(),
  ) {
    super({
      me,
      config,
      log: storeCoordinatorLog(store, me, corridorId),
      network: {
        send: (to, body) => {
          const envelope = { v: PROTOCOL_VERSION, from: me, to, sentAtWallMs: now().wallMs, body };
          publish(inboxTopic(corridorId, to, me), JSON.stringify(envelope), {});
        },
      },
      retain: (record) =>
        publish(
          decisionTopic(corridorId, me, record.txnId),
          JSON.stringify({ v: PROTOCOL_VERSION, coordinator: me, ...record }),
          { retain: true },
        ),
      clock: { now },
      random01: Math.random,
    });
  }
}

/**
 * What a push commits: a plan (with, over a running schedule, how long it wins), or a schedule bundle
 * (config/schedule-bundle.ts) for the corridor's intersections.
 */
export type PushedChange =
  | {
      readonly kind: "plan";
      readonly planFile: PushedPlan;
      /** The plan file's content digest (config/plan-digest.ts), sent with the PREPARE. */
      readonly digest: string;
      readonly until?: number | "hold";
      /** Its signature (`greenwave plan sign`), sent with the PREPARE; absent: unsigned. */
      readonly signature?: WireSignature;
    }
  | {
      readonly kind: "schedule";
      readonly scheduleId: string;
      readonly version: number;
      /** The bundle's content digest (config/schedule-bundle.ts). */
      readonly digest: string;
      readonly bundle: unknown;
      readonly participants: readonly string[];
      /** Its signature (`greenwave schedule sign`), sent with the PREPARE; absent: unsigned. */
      readonly signature?: WireSignature;
    }
  | {
      /** The corridor's keyring (core/corridor/keyring.ts): the trusted signing keys, from its commit on. */
      readonly kind: "keyring";
      readonly version: number;
      /** The keyring's digest (protocol/keyring.ts), which its signers signed. */
      readonly digest: string;
      /** The keyring file as its schema reads it; each gateway compiles it itself. */
      readonly keyringFile: unknown;
      readonly participants: readonly string[];
      /** Its signatures (`greenwave keys sign`), as many as its threshold asks. */
      readonly signatures: readonly WireSignature[];
    }
  | {
      /** A cancel of another transaction's waiting change (core/corridor/plan-cancel.ts). */
      readonly kind: "cancel";
      readonly target: string;
      /** The target's participants and instant, as its decision record says. */
      readonly participants: readonly string[];
      readonly activationWallMs: number;
    };

/** A change to coordinate: what, its earliest activation, how far ahead at least. */
export interface PushRequest {
  readonly name: string;
  /** The corridor's time reference: the common cycle boundaries count from its daily sync point. */
  readonly timeReference: TimeReference;
  readonly change: PushedChange;
  readonly atWallMs: number | null;
  readonly leadMs: number;
  readonly ackTimeoutMs: number;
  readonly haltAfter?: HaltAfter;
}

/** Coordinates one plan change to its end (or the ack timeout once committed) and says how it went. */
export async function coordinatePush(host: CoordinatorHost, request: PushRequest): Promise<PushResult> {
  const started = host.now();
  const change = request.change;
  const earliest = Math.max(request.atWallMs ?? 0, started.wallMs + request.leadMs);
  // A plan takes effect at a common cycle boundary; a schedule governs from an instant (its runners
  // then find each change's boundary), taken to the whole second; a cancel is due before its target's.
  const activationWallMs =
    change.kind === "plan"
      ? nextCommonBoundary(earliest, request.timeReference, Math.round(change.planFile.cycleSeconds * 1000))
      : change.kind === "cancel"
        ? change.activationWallMs
        : Math.ceil(earliest / 1000) * 1000;
  const ref =
    change.kind === "plan"
      ? {
          planId: change.planFile.id,
          version: change.planFile.version,
          digest: change.digest,
          ...(change.until !== undefined ? { until: change.until } : {}),
        }
      : change.kind === "cancel"
        ? { planId: cancelKey(change.target), version: 0 }
        : change.kind === "keyring"
          ? { planId: KEYRING_KEY, version: change.version, digest: change.digest }
          : { planId: scheduleKey(change.scheduleId), version: change.version, digest: change.digest };
  const txnId = newTxnId(request.name, started.wallMs);
  const run = host.begin(
    startCoordinator(host.config, {
      txnId,
      coordinator: host.me,
      participants:
        change.kind === "plan" ? Object.keys(change.planFile.intersections) : [...change.participants],
      plan: ref,
      activationWallMs,
    }),
    change.kind === "plan"
      ? change.planFile
      : change.kind === "schedule"
        ? change.bundle
        : change.kind === "keyring"
          ? change.keyringFile
          : null,
    request.haltAfter,
    change.kind === "cancel"
      ? null
      : change.kind === "keyring"
        ? change.signatures
        : (change.signature ?? null),
  );
  // Decided, then acknowledged by all or given up on after the ack timeout (the record is retained).
  let giveUp: NodeJS.Timeout | null = null;
  await new Promise<void>((resolve) => {
    void run.ended.then(resolve);
    const poll = setInterval(() => {
      if (run.state.outcome !== "committed" || giveUp) return;
      clearInterval(poll);
      giveUp = setTimeout(resolve, request.ackTimeoutMs);
    }, 20);
    void run.ended.then(() => clearInterval(poll));
  });
  if (giveUp) clearTimeout(giveUp);
  const state = run.state;
  const outcome = run.halted ? "halted" : (run.finished?.outcome ?? state.outcome ?? "aborted");
  return {
    txnId,
    corridor: host.corridorId,
    plan:
      change.kind === "cancel"
        ? { id: "cancel", version: 0, kind: "cancel" as const, cancels: change.target }
        : {
            id: change.kind === "keyring" ? KEYRING_ID : bareId(ref.planId),
            version: ref.version,
            digest: change.digest,
            ...(change.kind === "schedule" || change.kind === "keyring" ? { kind: change.kind } : {}),
          },
    outcome,
    reason: run.finished?.reason ?? null,
    activationAt: new Date(activationWallMs).toISOString(),
    votes: state.participants.map((id) => {
      const vote = state.votes[id];
      return {
        intersection: id,
        vote: vote ? (vote.yes ? "yes" : "no") : "none",
        reason: vote && !vote.yes ? vote.reason : null,
      };
    }),
    unacknowledged:
      outcome === "committed" ? state.participants.filter((id) => !state.acked.includes(id)) : [],
    durationMs: Math.round(host.now().monoMs - started.monoMs),
  };
}
