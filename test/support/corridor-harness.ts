import {
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorMessage,
  type CoordinatorState,
  DEFAULT_COORDINATOR_CONFIG,
  startCoordinator,
  stepCoordinator,
} from "../../gateway/core/corridor/coordinator.js";
import {
  fencingFloor,
  type LeaseAuthorityEffect,
  type LeaseAuthorityState,
  type LeaseReply,
  startLeaseAuthority,
  stepLeaseAuthority,
} from "../../gateway/core/corridor/lease.js";
import {
  type InquiryAnswer,
  type Outcome,
  type ParticipantEffect,
  type ParticipantEvent,
  type ParticipantState,
  type PrepareVerdict,
  type PreparedTxn,
  startParticipant,
  stepParticipant,
  type Tombstone,
} from "../../gateway/core/corridor/participant.js";

/**
 * The corridor protocol's pure machines wired together in memory: a virtual clock, a queue of
 * messages in flight that the test delivers, drops, duplicates or reorders, and "disks" that keep
 * only what the machines asked to force-write. A small deterministic world for the unit tests.
 */

export type Message =
  | {
      readonly kind: "to-node";
      readonly from: string;
      readonly to: string;
      readonly message: CoordinatorMessage;
    }
  | { readonly kind: "lease-reply"; readonly from: string; readonly to: string; readonly reply: LeaseReply }
  | {
      readonly kind: "vote";
      readonly from: string;
      readonly to: string;
      readonly txnId: string;
      readonly yes: boolean;
      readonly reason: string | null;
    }
  | {
      readonly kind: "ack";
      readonly from: string;
      readonly to: string;
      readonly txnId: string;
      readonly outcome: Outcome;
    }
  | { readonly kind: "inquiry"; readonly from: string; readonly to: string; readonly txnId: string }
  | {
      readonly kind: "answer";
      readonly from: string;
      readonly to: string;
      readonly txnId: string;
      readonly answer: InquiryAnswer;
    };

interface NodeDisk {
  epoch: number;
  highestToken: number;
  prepared: PreparedTxn | null;
  tombstones: Tombstone[];
}

export interface Node {
  readonly id: string;
  authority: LeaseAuthorityState;
  participant: ParticipantState;
  disk: NodeDisk;
  /** Plans this intersection took, in order. */
  applied: PreparedTxn[];
  up: boolean;
}

export interface Coordinator {
  readonly id: string;
  state: CoordinatorState;
  /** What its log holds: the commit record (forced) and the end record. */
  committed: boolean;
  finished: { outcome: Outcome; reason: string | null } | null;
}

export class CorridorHarness {
  now = 0;
  readonly nodes = new Map<string, Node>();
  readonly coordinators = new Map<string, Coordinator>();
  queue: Message[] = [];
  readonly trace: string[] = [];
  verdict: (node: string, txn: PreparedTxn) => PrepareVerdict = () => ({ ok: true });
  /** Messages matching this are lost on send. */
  lose: (message: Message) => boolean = () => false;

  constructor(ids: readonly string[]) {
    for (const id of ids) {
      const disk: NodeDisk = { epoch: 0, highestToken: 0, prepared: null, tombstones: [] };
      const node: Node = {
        id,
        authority: null as unknown as LeaseAuthorityState,
        participant: null as unknown as ParticipantState,
        disk,
        applied: [],
        up: true,
      };
      this.nodes.set(id, node);
      this.bootNode(node);
    }
  }

  private bootNode(node: Node): void {
    const started = startLeaseAuthority(node.disk.epoch);
    node.authority = started.state;
    this.runAuthorityEffects(node, started.effects);
    node.participant = startParticipant(
      node.id,
      {
        highestToken: node.disk.highestToken,
        prepared: node.disk.prepared,
        tombstones: node.disk.tombstones,
      },
      this.now,
    );
    node.up = true;
  }

  /** A crash loses everything but the disk; the restart begins a new lease epoch. */
  crashNode(id: string): void {
    const node = this.nodes.get(id) as Node;
    node.up = false;
    this.queue = this.queue.filter((m) => m.to !== id);
    this.trace.push(`${this.now} crash ${id}`);
  }

  restartNode(id: string): void {
    this.bootNode(this.nodes.get(id) as Node);
    this.trace.push(`${this.now} restart ${id}`);
  }

  startCoordinator(
    id: string,
    participants: readonly string[],
    txnId: string,
    config: Partial<CoordinatorConfig> = {},
    activationWallMs = 60_000,
  ): Coordinator {
    const state = startCoordinator(
      { ...DEFAULT_COORDINATOR_CONFIG, ...config },
      {
        txnId,
        coordinator: id,
        participants,
        plan: { planId: `plan-of-${txnId}`, version: 1 },
        activationWallMs,
      },
    );
    const c: Coordinator = { id, state, committed: false, finished: null };
    this.coordinators.set(id, c);
    this.stepCoordinator(c, { type: "start" });
    return c;
  }

  private send(message: Message): void {
    this.trace.push(`${this.now} send ${describe(message)}`);
    if (this.lose(message)) {
      this.trace.push(`${this.now}   lost`);
      return;
    }
    this.queue.push(message);
  }

  private stepCoordinator(c: Coordinator, event: Parameters<typeof stepCoordinator>[1]): void {
    const step = stepCoordinator(c.state, event, this.now);
    c.state = step.state;
    for (const effect of step.effects) this.runCoordinatorEffect(c, effect);
  }

  private runCoordinatorEffect(c: Coordinator, effect: CoordinatorEffect): void {
    switch (effect.type) {
      case "send":
        this.send({ kind: "to-node", from: c.id, to: effect.to, message: effect.message });
        break;
      case "persist-commit":
        c.committed = true;
        break;
      case "persist-end":
        break;
      case "answer":
        this.send({ kind: "answer", from: c.id, to: effect.to, txnId: effect.txnId, answer: effect.outcome });
        break;
      case "finished":
        c.finished = { outcome: effect.outcome, reason: effect.reason };
        this.trace.push(`${this.now} ${c.id} finished ${effect.outcome} ${effect.reason ?? ""}`);
        break;
    }
  }

  private runAuthorityEffects(node: Node, effects: readonly LeaseAuthorityEffect[]): void {
    for (const effect of effects) {
      if (effect.type === "persist-epoch") {
        node.disk.epoch = effect.epoch;
        node.authority = stepLeaseAuthority(node.authority, { type: "epoch-durable" }, this.now).state;
      } else this.send({ kind: "lease-reply", from: node.id, to: effect.to, reply: effect.reply });
    }
  }

  private stepParticipant(node: Node, event: ParticipantEvent): void {
    const step = stepParticipant(node.participant, event, this.now);
    node.participant = step.state;
    for (const effect of step.effects) this.runParticipantEffect(node, effect);
  }

  private runParticipantEffect(node: Node, effect: ParticipantEffect): void {
    switch (effect.type) {
      case "persist-prepared":
        node.disk.prepared = effect.txn;
        node.disk.highestToken = effect.highestToken;
        break;
      case "persist-outcome":
        if (node.disk.prepared?.txnId === effect.txnId) node.disk.prepared = null;
        // Only forced writes are sure to survive; the harness keeps all (SQLite commits are durable).
        node.disk.tombstones = [...node.disk.tombstones, { txnId: effect.txnId, outcome: effect.outcome }];
        break;
      case "vote":
        this.send({
          kind: "vote",
          from: node.id,
          to: effect.to,
          txnId: effect.txnId,
          yes: effect.yes,
          reason: effect.reason,
        });
        break;
      case "ack":
        this.send({
          kind: "ack",
          from: node.id,
          to: effect.to,
          txnId: effect.txnId,
          outcome: effect.outcome,
        });
        break;
      case "apply-plan":
        node.applied.push(effect.txn);
        break;
      case "ask-decision":
        this.send({ kind: "inquiry", from: node.id, to: effect.txn.coordinator, txnId: effect.txn.txnId });
        for (const peer of effect.txn.participants)
          if (peer !== node.id)
            this.send({ kind: "inquiry", from: node.id, to: peer, txnId: effect.txn.txnId });
        break;
      case "answer-inquiry":
        this.send({
          kind: "answer",
          from: node.id,
          to: effect.to,
          txnId: effect.txnId,
          answer: effect.answer,
        });
        break;
      case "report":
        this.trace.push(`${this.now} ${node.id}: ${effect.message}`);
        break;
    }
  }

  /** Delivers the message at `index` of the queue (0: the oldest). */
  deliver(index = 0): void {
    const [message] = this.queue.splice(index, 1);
    if (!message) return;
    this.trace.push(`${this.now} deliver ${describe(message)}`);
    const coordinator = this.coordinators.get(message.to);
    const node = this.nodes.get(message.to);
    if (node && !node.up) return;
    switch (message.kind) {
      case "to-node": {
        if (!node) return;
        const m = message.message;
        if (m.type === "acquire" || m.type === "renew" || m.type === "release") {
          const request =
            m.type === "acquire"
              ? { type: m.type, holder: message.from, requestId: m.requestId, ttlMs: m.ttlMs }
              : m.type === "renew"
                ? { type: m.type, holder: message.from, token: m.token, ttlMs: m.ttlMs }
                : { type: m.type, holder: message.from, token: m.token };
          const step = stepLeaseAuthority(node.authority, request, this.now);
          node.authority = step.state;
          this.runAuthorityEffects(node, step.effects);
        } else if (m.type === "prepare") {
          this.stepParticipant(node, {
            type: "prepare",
            txn: m.txn,
            verdict: this.verdict(node.id, m.txn),
            lastIssuedToken: fencingFloor(node.authority),
          });
        } else {
          this.stepParticipant(node, {
            type: "decision",
            txnId: m.txnId,
            outcome: m.outcome,
            source: "coordinator",
            by: message.from,
          });
        }
        return;
      }
      case "lease-reply":
        if (coordinator)
          this.stepCoordinator(coordinator, {
            type: "lease-reply",
            from: message.from,
            reply: message.reply,
          });
        return;
      case "vote":
        if (coordinator)
          this.stepCoordinator(coordinator, {
            type: "vote",
            from: message.from,
            txnId: message.txnId,
            vote: message.yes ? { yes: true } : { yes: false, reason: message.reason ?? "" },
          });
        return;
      case "ack":
        if (coordinator)
          this.stepCoordinator(coordinator, {
            type: "ack",
            from: message.from,
            txnId: message.txnId,
            outcome: message.outcome,
          });
        return;
      case "inquiry":
        if (coordinator)
          this.stepCoordinator(coordinator, { type: "inquiry", from: message.from, txnId: message.txnId });
        else if (node)
          this.stepParticipant(node, { type: "inquiry", txnId: message.txnId, from: message.from });
        return;
      case "answer":
        if (node && message.answer !== "prepared")
          this.stepParticipant(node, {
            type: "decision",
            txnId: message.txnId,
            outcome: message.answer,
            source: this.coordinators.has(message.from) ? "presumed-abort" : "peer",
            by: message.from,
          });
        return;
    }
  }

  /** Advances the clock and ticks every machine that is up. */
  advance(ms: number, random01 = 0.5): void {
    this.now += ms;
    for (const c of this.coordinators.values()) this.stepCoordinator(c, { type: "tick", random01 });
    for (const node of this.nodes.values()) if (node.up) this.stepParticipant(node, { type: "tick" });
  }

  /** Delivers everything in flight (and what that produces), ticking as it goes, until quiet or `maxMs`. */
  settle(maxMs = 60_000, stepMs = 50): void {
    const end = this.now + maxMs;
    while (this.now < end) {
      let guard = 0;
      while (this.queue.length > 0 && guard++ < 10_000) this.deliver(0);
      const busy =
        [...this.coordinators.values()].some((c) => c.state.phase !== "done") ||
        [...this.nodes.values()].some((n) => n.up && n.participant.prepared !== null);
      if (!busy && this.queue.length === 0) return;
      this.advance(stepMs);
    }
  }
}

function describe(m: Message): string {
  switch (m.kind) {
    case "to-node":
      return `${m.from}->${m.to} ${m.message.type}${"token" in m.message ? `#${m.message.token}` : ""}${m.message.type === "decision" ? ` ${m.message.outcome}` : ""}`;
    case "lease-reply":
      return `${m.from}->${m.to} lease ${m.reply.type}${"token" in m.reply ? `#${m.reply.token}` : ""}`;
    case "vote":
      return `${m.from}->${m.to} vote ${m.yes ? "yes" : `no (${m.reason})`}`;
    case "ack":
      return `${m.from}->${m.to} ack ${m.outcome}`;
    case "inquiry":
      return `${m.from}->${m.to} inquiry ${m.txnId}`;
    case "answer":
      return `${m.from}->${m.to} answer ${m.txnId} ${m.answer}`;
  }
}
