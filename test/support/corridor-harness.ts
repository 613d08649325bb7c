import {
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorMessage,
  type CoordinatorState,
  DEFAULT_COORDINATOR_CONFIG,
  startCoordinator,
  stepCoordinator,
} from "../../gateway/core/corridor/coordinator.js";
import type { LeaseAuthorityState, LeaseReply } from "../../gateway/core/corridor/lease.js";
import type {
  InquiryAnswer,
  Outcome,
  ParticipantState,
  PrepareVerdict,
  PreparedTxn,
} from "../../gateway/core/corridor/participant.js";
import type { IntersectionPlan } from "../../gateway/core/model.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import { ParticipantShell } from "../../gateway/shell/corridor/participant-shell.js";
import { SimDisk } from "../../simulators/corridor/sim-disk.js";

/**
 * The corridor protocol's machines wired together in memory: a virtual clock, a queue of messages in
 * flight that the test delivers, drops, duplicates or reorders. Each intersection runs the production
 * participant shell (gateway/shell/corridor/participant-shell.ts) over in-memory ports: the
 * simulator's disk, closed (every write kept) at a crash, and this queue as its network. A small
 * deterministic world for the unit tests.
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

/** The harness checks no plan: the verdict is the test's (`CorridorHarness.verdict`). */
const UNCHECKED_PLAN = {} as IntersectionPlan;

export class Node {
  shell!: ParticipantShell;
  readonly disk = new SimDisk();
  /** Plans this intersection took, in order. */
  readonly applied: PreparedTxn[] = [];
  up = true;

  constructor(readonly id: string) {}

  get participant(): ParticipantState {
    return this.shell.participantState;
  }

  get authority(): LeaseAuthorityState {
    return this.shell.authorityState;
  }
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
      const node = new Node(id);
      this.nodes.set(id, node);
      this.bootNode(node);
    }
  }

  /** A new process: the shell starts a new lease epoch and restores the participant from the disk. */
  private bootNode(node: Node): void {
    let sender = "";
    node.shell = new ParticipantShell({
      me: node.id,
      disk: node.disk,
      network: { send: (to, body) => this.send(fromNode(node.id, to, body)) },
      clock: { now: () => ({ monoMs: this.now, wallMs: this.now }) },
      planCheck: {
        check: (body) => {
          const txn = {
            txnId: body.txnId,
            coordinator: sender,
            token: body.token,
            participants: body.participants,
            plan: { planId: body.plan.id, version: body.plan.version },
            activationWallMs: body.activationWallMs,
          };
          const verdict = this.verdict(node.id, txn);
          return verdict.ok ? { ok: true, plan: UNCHECKED_PLAN } : verdict;
        },
      },
      host: {
        schedulePlan: (_plan, txn, resumed) => {
          if (!resumed) node.applied.push(txn);
        },
        planRefusal: () => null,
        withdrawPlan: () => {},
        audit: () => {},
        changed: () => {},
      },
      log: { warn: (message) => this.trace.push(`${this.now} ${node.id}: ${message}`), error: () => {} },
      // The harness is about the protocol: no clock or lead-time refusals (the simulator covers those).
      settings: { maxClockErrorMs: Infinity, minLeadMs: -Infinity, clockErrorMs: () => null },
    });
    this.deliverTo = (n, from, body) => {
      sender = from;
      n.shell.onMessage({ from, to: n.id, sentAtWallMs: this.now, body });
    };
    node.up = true;
  }

  private deliverTo: (node: Node, from: string, body: CorridorBody) => void = () => {};

  /** A crash loses everything but the disk (every write kept); the restart begins a new lease epoch. */
  crashNode(id: string): void {
    const node = this.nodes.get(id) as Node;
    node.up = false;
    node.disk.close();
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

  /** Delivers the message at `index` of the queue (0: the oldest). */
  deliver(index = 0): void {
    const [message] = this.queue.splice(index, 1);
    if (!message) return;
    this.trace.push(`${this.now} deliver ${describe(message)}`);
    const coordinator = this.coordinators.get(message.to);
    const node = this.nodes.get(message.to);
    if (node && !node.up) return;
    switch (message.kind) {
      case "to-node":
        if (node) this.deliverTo(node, message.from, coordinatorBody(message.message));
        return;
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
        else if (node) this.deliverTo(node, message.from, { type: "inquiry", txnId: message.txnId });
        return;
      case "answer":
        if (node)
          this.deliverTo(node, message.from, {
            type: "answer",
            txnId: message.txnId,
            answer: message.answer,
          });
        return;
    }
  }

  /** Advances the clock and ticks every machine that is up. */
  advance(ms: number, random01 = 0.5): void {
    this.now += ms;
    for (const c of this.coordinators.values()) this.stepCoordinator(c, { type: "tick", random01 });
    for (const node of this.nodes.values()) if (node.up) node.shell.tick();
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

/** A coordinator's message as it travels on the wire (the PREPARE's plan text is the harness's verdict). */
function coordinatorBody(m: CoordinatorMessage): CorridorBody {
  if (m.type !== "prepare") return m;
  const { txn } = m;
  return {
    type: "prepare",
    txnId: txn.txnId,
    token: txn.token,
    participants: [...txn.participants],
    plan: { id: txn.plan.planId, version: txn.plan.version },
    planFile: null,
    activationWallMs: txn.activationWallMs,
  };
}

/** What a node's shell sends, as the harness's message. */
function fromNode(from: string, to: string, body: CorridorBody): Message {
  switch (body.type) {
    case "lease":
      return { kind: "lease-reply", from, to, reply: body.reply };
    case "vote":
      return { kind: "vote", from, to, txnId: body.txnId, yes: body.yes, reason: body.reason ?? null };
    case "ack":
      return { kind: "ack", from, to, txnId: body.txnId, outcome: body.outcome };
    case "inquiry":
      return { kind: "inquiry", from, to, txnId: body.txnId };
    case "answer":
      return { kind: "answer", from, to, txnId: body.txnId, answer: body.answer };
    default:
      throw new Error(`a participant does not send ${body.type}`);
  }
}
