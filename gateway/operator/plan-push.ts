import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import mqtt, { type MqttClient } from "mqtt";
import type { LoadedCorridor, LoadedPlan } from "../config/load.js";
import {
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorEvent,
  type CoordinatorState,
  DEFAULT_COORDINATOR_CONFIG,
  resumeCommitted,
  startCoordinator,
  stepCoordinator,
} from "../core/corridor/coordinator.js";
import { nextCommonBoundary } from "../core/corridor/boundary.js";
import {
  type CorridorBody,
  decisionTopic,
  inboxFilter,
  inboxTopic,
  parseCorridorMessage,
} from "../protocol/corridor-messages.js";
import { PROTOCOL_VERSION } from "../protocol/topics.js";
import type { CoordinatorStore } from "../store/coordinator-store.js";
import { OperatorError } from "./operator-client.js";

interface BrokerConnection {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string | Buffer;
}

export interface PushOptions extends BrokerConnection {
  /** The coordinator's name: `@name` on the wire (an operator's user name, for the broker's ACL). */
  readonly name: string;
  readonly corridor: LoadedCorridor;
  readonly plan: LoadedPlan;
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
  readonly haltAfter?: "prepare-sent" | "commit-forced";
}

export interface PushResult {
  readonly txnId: string;
  readonly corridor: string;
  readonly plan: { readonly id: string; readonly version: number };
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

const systemNow = () => ({ monoMs: performance.now(), wallMs: Date.now() });

export function newTxnId(name: string, wallMs: number): string {
  return `${name}-${wallMs.toString(36)}-${randomBytes(4).toString("hex")}`;
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

/** What one run needs besides the broker: its log, its clock, the plan it prepares (none when resumed). */
interface RunContext {
  readonly store: CoordinatorStore;
  readonly now?: () => { monoMs: number; wallMs: number };
  readonly haltAfter?: PushOptions["haltAfter"];
  readonly planFile: unknown;
}

/**
 * Runs one coordinator machine over MQTT until it finishes (or, once committed, until the ack
 * timeout): carries out its effects in order — the forced commit before any COMMIT leaves.
 */
class CoordinatorRun {
  state: CoordinatorState;
  finished: { outcome: "committed" | "aborted"; reason: string | null } | null = null;
  halted = false;
  private done: () => void = () => {};
  readonly ended = new Promise<void>((resolve) => {
    this.done = resolve;
  });

  constructor(
    private readonly client: MqttClient,
    private readonly context: RunContext,
    private readonly me: string,
    state: CoordinatorState,
    private readonly corridorId: string,
  ) {
    this.state = state;
  }

  step(event: CoordinatorEvent): void {
    if (this.halted) return;
    const now = (this.context.now ?? systemNow)();
    const before = this.state;
    const step = stepCoordinator(this.state, event, now.monoMs);
    this.state = step.state;
    for (const effect of step.effects) {
      this.run(effect, before, now.wallMs);
      if (this.context.haltAfter === "commit-forced" && effect.type === "persist-commit") return this.halt();
    }
    if (
      this.context.haltAfter === "prepare-sent" &&
      step.effects.some((e) => e.type === "send" && e.message.type === "prepare")
    )
      this.halt();
  }

  private halt(): void {
    this.halted = true;
    this.done();
  }

  private send(to: string, body: CorridorBody, wallMs: number): void {
    const envelope = { v: PROTOCOL_VERSION, from: this.me, to, sentAtWallMs: wallMs, body };
    this.client.publish(inboxTopic(this.corridorId, to, this.me), JSON.stringify(envelope), { qos: 1 });
  }

  private run(effect: CoordinatorEffect, before: CoordinatorState, wallMs: number): void {
    switch (effect.type) {
      case "send": {
        const m = effect.message;
        if (m.type === "prepare")
          this.send(
            effect.to,
            {
              type: "prepare",
              txnId: m.txn.txnId,
              token: m.txn.token,
              participants: [...m.txn.participants],
              plan: { id: m.txn.plan.planId, version: m.txn.plan.version },
              planFile: this.context.planFile,
              activationWallMs: m.txn.activationWallMs,
            },
            wallMs,
          );
        else this.send(effect.to, m, wallMs);
        return;
      }
      case "persist-commit": {
        const tokens = Object.fromEntries(
          Object.entries(before.leases).map(([id, lease]) => [id, lease.token]),
        );
        this.context.store.persistCommit(
          {
            txnId: effect.txnId,
            corridor: this.corridorId,
            coordinator: this.me,
            participants: effect.participants,
            planId: effect.plan.planId,
            planVersion: effect.plan.version,
            activationWallMs: effect.activationWallMs,
            tokens,
          },
          wallMs,
        );
        // After the COMMITs of this step have left: participants normally hear the coordinator first.
        setImmediate(() => {
          if (!this.halted) this.publishRecord("committed");
        });
        return;
      }
      case "persist-end": {
        const s = this.state;
        this.context.store.persistEnd(
          {
            txnId: effect.txnId,
            corridor: this.corridorId,
            coordinator: this.me,
            participants: s.participants,
            planId: s.plan.planId,
            planVersion: s.plan.version,
            activationWallMs: s.activationWallMs,
            tokens: {},
            outcome: effect.outcome,
          },
          wallMs,
        );
        if (effect.outcome === "aborted") this.publishRecord("aborted");
        return;
      }
      case "answer":
        this.send(effect.to, { type: "answer", txnId: effect.txnId, answer: effect.outcome }, wallMs);
        return;
      case "finished":
        this.finished = { outcome: effect.outcome, reason: effect.reason };
        this.done();
        return;
    }
  }

  /** The decision, retained, for participants that ask after this command is gone. */
  private publishRecord(outcome: "committed" | "aborted"): void {
    const s = this.state;
    this.client.publish(
      decisionTopic(this.corridorId, this.me, s.txnId),
      JSON.stringify({
        v: PROTOCOL_VERSION,
        txnId: s.txnId,
        coordinator: this.me,
        outcome,
        participants: s.participants,
        activationWallMs: s.activationWallMs,
      }),
      { qos: 1, retain: true },
    );
  }
}

function wire(
  client: MqttClient,
  corridorId: string,
  me: string,
  runs: () => readonly CoordinatorRun[],
  store: CoordinatorStore,
) {
  client.on("message", (topic, payload) => {
    const parsed = parseCorridorMessage(topic, payload);
    if (!parsed.ok) return;
    const { from, body } = parsed.envelope;
    const txnOf = "txnId" in body ? body.txnId : null;
    const target = runs().find((r) =>
      txnOf ? r.state.txnId === txnOf : r.state.participants.includes(from),
    );
    if (!target) {
      // Presumed abort: an inquiry about a transaction this log does not hold (or holds as aborted).
      if (body.type === "inquiry") {
        const outcome = store.outcomeOf(body.txnId) ?? "aborted";
        const envelope = {
          v: PROTOCOL_VERSION,
          from: me,
          to: from,
          sentAtWallMs: Date.now(),
          body: { type: "answer", txnId: body.txnId, answer: outcome },
        };
        client.publish(inboxTopic(corridorId, from, me), JSON.stringify(envelope), { qos: 1 });
      }
      return;
    }
    switch (body.type) {
      case "lease":
        return target.step({ type: "lease-reply", from, reply: body.reply });
      case "vote":
        return target.step({
          type: "vote",
          from,
          txnId: body.txnId,
          vote: body.yes ? { yes: true } : { yes: false, reason: body.reason ?? "no reason given" },
        });
      case "ack":
        return target.step({ type: "ack", from, txnId: body.txnId, outcome: body.outcome });
      case "inquiry":
        return target.step({ type: "inquiry", from, txnId: body.txnId });
      default:
        return;
    }
  });
}

/**
 * A coordinator on the broker: its connection, its inbox, its runs ticking, and the committed
 * transactions of its log resumed (a restarted coordinator finishes them).
 */
async function openCoordinator(options: RecoverOptions & { readonly haltAfter?: PushOptions["haltAfter"] }) {
  const me = `@${options.name}`;
  const corridorId = options.corridor.raw.id;
  const config = { ...DEFAULT_COORDINATOR_CONFIG, ...options.config };
  const client = await connect(
    options,
    `greenwave-coordinator-${options.name}-${randomBytes(3).toString("hex")}`,
  );
  const runs: CoordinatorRun[] = [];
  const timer = setInterval(() => {
    for (const run of runs) run.step({ type: "tick", random01: Math.random() });
  }, 50);
  const close = async () => {
    clearInterval(timer);
    await client.endAsync().catch(() => {});
  };
  try {
    wire(client, corridorId, me, () => runs, options.store);
    await client.subscribeAsync(inboxFilter(corridorId, me), { qos: 1 });
  } catch (error) {
    await close();
    throw error;
  }
  const begin = (state: CoordinatorState, planFile: unknown, haltAfter?: PushOptions["haltAfter"]) => {
    const context = {
      store: options.store,
      planFile,
      ...(options.now ? { now: options.now } : {}),
      ...(haltAfter ? { haltAfter } : {}),
    };
    const run = new CoordinatorRun(client, context, me, state, corridorId);
    runs.push(run);
    run.step({ type: "start" });
    return run;
  };
  // A fault-injected coordinator is about to "die": it does not also finish an older log.
  const resumed = options.haltAfter
    ? []
    : options.store
        .unfinished()
        .filter((entry) => entry.corridor === corridorId)
        .map((entry) =>
          begin(
            resumeCommitted(config, { ...entry, plan: { planId: entry.planId, version: entry.planVersion } }),
            null,
          ),
        );
  return { me, corridorId, config, resumed, begin, close };
}

/** Finishes the committed transactions of a coordinator's log (a restarted coordinator), then pushes the plan. */
export async function pushPlan(options: PushOptions): Promise<PushResult> {
  const now = options.now ?? systemNow;
  const { me, corridorId, config, begin, close } = await openCoordinator(options);
  try {
    const started = now();
    const plan = options.plan.raw;
    const cycleMs = Math.round(plan.cycleSeconds * 1000);
    const earliest = Math.max(options.atWallMs ?? 0, started.wallMs + options.leadMs);
    const activationWallMs = nextCommonBoundary(earliest, options.corridor.dailySyncMs, cycleMs);
    const txnId = newTxnId(options.name, started.wallMs);
    const run = begin(
      startCoordinator(config, {
        txnId,
        coordinator: me,
        participants: Object.keys(plan.intersections),
        plan: { planId: plan.id, version: plan.version },
        activationWallMs,
      }),
      plan,
      options.haltAfter,
    );
    // Decided, then acknowledged by all or given up on after the ack timeout (the record is retained).
    let giveUp: NodeJS.Timeout | null = null;
    await new Promise<void>((resolve) => {
      void run.ended.then(resolve);
      const poll = setInterval(() => {
        if (run.state.outcome !== "committed" || giveUp) return;
        clearInterval(poll);
        giveUp = setTimeout(resolve, options.ackTimeoutMs);
      }, 20);
      void run.ended.then(() => clearInterval(poll));
    });
    if (giveUp) clearTimeout(giveUp);
    const state = run.state;
    const outcome = run.halted ? "halted" : (run.finished?.outcome ?? state.outcome ?? "aborted");
    return {
      txnId,
      corridor: corridorId,
      plan: { id: plan.id, version: plan.version },
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
      durationMs: Math.round(now().monoMs - started.monoMs),
    };
  } finally {
    await close();
  }
}

export type RecoverOptions = Omit<PushOptions, "plan" | "atWallMs" | "leadMs" | "haltAfter"> & {
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
