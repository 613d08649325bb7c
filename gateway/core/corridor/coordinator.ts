import { backoffDelayMs } from "../backoff.js";
import { invariant } from "../invariant.js";
import { assertCoordinatorStep } from "./coordinator-assertions.js";
import type { LeaseReply } from "./lease.js";
import type { Outcome, PlanRef, PreparedTxn } from "./participant.js";

/**
 * The coordinator of one corridor plan change: a pure state machine. It takes the leases of every
 * intersection in one canonical order (or releases what it got and backs off with jitter), sends
 * PREPARE with each intersection's fencing token, decides, force-writes a commit before sending it,
 * and resends the decision until every participant acknowledged. Presumed abort: an abort needs no
 * forced write, and a missing vote is an abort.
 */

export interface CoordinatorConfig {
  readonly leaseTtlMs: number;
  /** Subtracted from the holder's view of a lease: the grantor's clock may run faster than ours. */
  readonly driftAllowanceMs: number;
  readonly requestTimeoutMs: number;
  readonly voteTimeoutMs: number;
  readonly resendMs: number;
  readonly maxAcquireAttempts: number;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number };
}

export const DEFAULT_COORDINATOR_CONFIG: CoordinatorConfig = {
  leaseTtlMs: 15_000,
  driftAllowanceMs: 500,
  requestTimeoutMs: 2000,
  voteTimeoutMs: 5000,
  resendMs: 1000,
  maxAcquireAttempts: 5,
  backoff: { initialMs: 200, maxMs: 3000 },
};

export interface HeldLease {
  readonly token: number;
  /** The holder's own (earlier) view of the deadline: request sent + TTL − drift allowance. */
  readonly deadlineMonoMs: number;
  readonly renewAtMonoMs: number;
  readonly renewSentAtMonoMs: number | null;
}

export type Vote = { readonly yes: true } | { readonly yes: false; readonly reason: string };

export type CoordinatorPhase = "acquiring" | "backing-off" | "preparing" | "committing" | "done";

export interface CoordinatorState {
  readonly config: CoordinatorConfig;
  readonly txnId: string;
  readonly coordinator: string;
  /** Sorted: the canonical order in which leases are taken (no deadlock between coordinators). */
  readonly participants: readonly string[];
  readonly plan: PlanRef;
  readonly activationWallMs: number;
  readonly phase: CoordinatorPhase;
  readonly attempt: number;
  readonly leases: Readonly<Record<string, HeldLease>>;
  /** Lease requests in flight, by intersection. */
  readonly pending: Readonly<Record<string, { readonly requestId: string; readonly sentAtMonoMs: number }>>;
  readonly retryAtMonoMs: number | null;
  readonly prepareDeadlineMonoMs: number | null;
  readonly votes: Readonly<Record<string, Vote>>;
  readonly acked: readonly string[];
  readonly lastSendMonoMs: number;
  readonly outcome: Outcome | null;
  readonly reason: string | null;
}

export type CoordinatorEvent =
  | { readonly type: "start" }
  | { readonly type: "lease-reply"; readonly from: string; readonly reply: LeaseReply }
  | { readonly type: "vote"; readonly from: string; readonly txnId: string; readonly vote: Vote }
  | { readonly type: "ack"; readonly from: string; readonly txnId: string; readonly outcome: Outcome }
  /** A participant in doubt asks for the decision. */
  | { readonly type: "inquiry"; readonly from: string; readonly txnId: string }
  /** Time passes; `random01` feeds the back-off jitter (seeded in the simulator). */
  | { readonly type: "tick"; readonly random01: number };

export type CoordinatorMessage =
  | { readonly type: "acquire"; readonly requestId: string; readonly ttlMs: number }
  | { readonly type: "renew"; readonly token: number; readonly ttlMs: number }
  | { readonly type: "release"; readonly token: number }
  | { readonly type: "prepare"; readonly txn: PreparedTxn }
  | { readonly type: "decision"; readonly txnId: string; readonly outcome: Outcome; readonly token: number };

export type CoordinatorEffect =
  | { readonly type: "send"; readonly to: string; readonly message: CoordinatorMessage }
  /** The commit point: force-written before the COMMITs that follow it in the same step. */
  | {
      readonly type: "persist-commit";
      readonly txnId: string;
      readonly participants: readonly string[];
      readonly plan: PlanRef;
      readonly activationWallMs: number;
    }
  /** Written lazily: the transaction needs nothing more. */
  | { readonly type: "persist-end"; readonly txnId: string; readonly outcome: Outcome }
  | { readonly type: "answer"; readonly to: string; readonly txnId: string; readonly outcome: Outcome }
  | { readonly type: "finished"; readonly outcome: Outcome; readonly reason: string | null };

export interface CoordinatorStep {
  readonly state: CoordinatorState;
  readonly effects: readonly CoordinatorEffect[];
}

export function startCoordinator(
  config: CoordinatorConfig,
  txn: {
    readonly txnId: string;
    readonly coordinator: string;
    readonly participants: readonly string[];
    readonly plan: PlanRef;
    readonly activationWallMs: number;
  },
): CoordinatorState {
  const participants = [...new Set(txn.participants)].sort();
  invariant(participants.length > 0, "a transaction needs at least one participant");
  return {
    config,
    ...txn,
    participants,
    phase: "acquiring",
    attempt: 0,
    leases: {},
    pending: {},
    retryAtMonoMs: null,
    prepareDeadlineMonoMs: null,
    votes: {},
    acked: [],
    lastSendMonoMs: 0,
    outcome: null,
    reason: null,
  };
}

/** A coordinator restarted with a commit in its log finishes it: resend COMMIT until all acknowledge. */
export function resumeCommitted(
  config: CoordinatorConfig,
  record: {
    readonly txnId: string;
    readonly coordinator: string;
    readonly participants: readonly string[];
    readonly plan: PlanRef;
    readonly activationWallMs: number;
    readonly tokens: Readonly<Record<string, number>>;
  },
): CoordinatorState {
  const state = startCoordinator(config, record);
  const leases: Record<string, HeldLease> = {};
  for (const id of state.participants)
    leases[id] = {
      token: record.tokens[id] ?? 0,
      deadlineMonoMs: 0,
      renewAtMonoMs: Infinity,
      renewSentAtMonoMs: null,
    };
  return { ...state, phase: "committing", outcome: "committed", leases, lastSendMonoMs: -Infinity };
}

/**
 * Requests every missing lease at once, in canonical (sorted) order. No coordinator ever waits while
 * holding: any refusal releases everything and backs off with jitter, so there is no deadlock, and
 * the leases of a large corridor cost one round trip instead of one per intersection.
 */
function acquireAll(state: CoordinatorState, now: number, effects: CoordinatorEffect[]): CoordinatorState {
  const missing = state.participants.filter((id) => !Object.hasOwn(state.leases, id));
  if (missing.length === 0) return prepareAll(state, now, effects);
  const pending = { ...state.pending };
  for (const id of missing) {
    if (pending[id]) continue;
    const requestId = `${state.txnId}/${state.attempt}/${id}`;
    effects.push({
      type: "send",
      to: id,
      message: { type: "acquire", requestId, ttlMs: state.config.leaseTtlMs },
    });
    pending[id] = { requestId, sentAtMonoMs: now };
  }
  return { ...state, phase: "acquiring", pending };
}

function prepareAll(state: CoordinatorState, now: number, effects: CoordinatorEffect[]): CoordinatorState {
  // A lease that ran out in our own view while we waited for the others (a stall, a slow peer) may
  // already be someone else's: start over rather than send a PREPARE it would only refuse.
  const expired = state.participants.find((id) => (state.leases[id]?.deadlineMonoMs ?? 0) <= now);
  if (expired) return backOff(state, `the lease on ${expired} ran out before PREPARE`, effects);
  for (const id of state.participants) {
    const lease = state.leases[id] as HeldLease;
    effects.push({
      type: "send",
      to: id,
      message: {
        type: "prepare",
        txn: {
          txnId: state.txnId,
          coordinator: state.coordinator,
          token: lease.token,
          participants: state.participants,
          plan: state.plan,
          activationWallMs: state.activationWallMs,
        },
      },
    });
  }
  return {
    ...state,
    phase: "preparing",
    pending: {},
    prepareDeadlineMonoMs: now + state.config.voteTimeoutMs,
    lastSendMonoMs: now,
  };
}

function releaseAll(state: CoordinatorState, effects: CoordinatorEffect[]): CoordinatorState {
  for (const [id, lease] of Object.entries(state.leases))
    effects.push({ type: "send", to: id, message: { type: "release", token: lease.token } });
  return { ...state, leases: {} };
}

function abort(state: CoordinatorState, reason: string, effects: CoordinatorEffect[]): CoordinatorState {
  // Presumed abort: nothing forced. Whoever was sent PREPARE hears ABORT (those not prepared ignore it).
  if (state.phase === "preparing")
    for (const [id, lease] of Object.entries(state.leases))
      effects.push({
        type: "send",
        to: id,
        message: { type: "decision", txnId: state.txnId, outcome: "aborted", token: lease.token },
      });
  const released = releaseAll(state, effects);
  effects.push({ type: "persist-end", txnId: state.txnId, outcome: "aborted" });
  effects.push({ type: "finished", outcome: "aborted", reason });
  return { ...released, phase: "done", outcome: "aborted", reason, pending: {} };
}

function sendDecisions(state: CoordinatorState, now: number, effects: CoordinatorEffect[]): CoordinatorState {
  for (const id of state.participants) {
    if (state.acked.includes(id)) continue;
    effects.push({
      type: "send",
      to: id,
      message: {
        type: "decision",
        txnId: state.txnId,
        outcome: "committed",
        token: state.leases[id]?.token ?? 0,
      },
    });
  }
  return { ...state, lastSendMonoMs: now };
}

export function stepCoordinator(
  state: CoordinatorState,
  event: CoordinatorEvent,
  now: number,
): CoordinatorStep {
  const step = handle(state, event, now);
  assertCoordinatorStep(state, event, step);
  return step;
}

function handle(state: CoordinatorState, event: CoordinatorEvent, now: number): CoordinatorStep {
  const effects: CoordinatorEffect[] = [];
  if (event.type === "inquiry") {
    if (event.txnId !== state.txnId) return { state, effects };
    // Asked before deciding: decide abort now, so that the answer can never be contradicted.
    const decided =
      state.phase === "done" || state.phase === "committing"
        ? state
        : abort(state, `${event.from} asked for the decision before it was made`, effects);
    effects.push({
      type: "answer",
      to: event.from,
      txnId: state.txnId,
      outcome: decided.outcome ?? "aborted",
    });
    return { state: decided, effects };
  }
  if (state.phase === "done") return { state, effects };
  switch (event.type) {
    case "start":
      if (state.phase === "committing") return { state: sendDecisions(state, now, effects), effects };
      return { state: acquireAll(state, now, effects), effects };
    case "lease-reply":
      return { state: onLeaseReply(state, event, now, effects), effects };
    case "vote": {
      if (
        event.txnId !== state.txnId ||
        state.phase !== "preparing" ||
        !state.participants.includes(event.from)
      )
        return { state, effects };
      const votes = { ...state.votes, [event.from]: event.vote };
      const next = { ...state, votes };
      if (!event.vote.yes)
        return { state: abort(next, `${event.from} voted no: ${event.vote.reason}`, effects), effects };
      if (!state.participants.every((id) => votes[id]?.yes)) return { state: next, effects };
      // Every vote is yes. The decision is ours to make only while every lease is still ours in our
      // own (pessimistic) view; otherwise another coordinator may already hold an intersection.
      const expired = state.participants.find((id) => (state.leases[id]?.deadlineMonoMs ?? 0) <= now);
      if (expired)
        return {
          state: abort(next, `the lease on ${expired} ran out before the decision`, effects),
          effects,
        };
      effects.push({
        type: "persist-commit",
        txnId: state.txnId,
        participants: state.participants,
        plan: state.plan,
        activationWallMs: state.activationWallMs,
      });
      const committing: CoordinatorState = { ...next, phase: "committing", outcome: "committed" };
      return { state: sendDecisions(committing, now, effects), effects };
    }
    case "ack": {
      if (event.txnId !== state.txnId || state.phase !== "committing" || state.acked.includes(event.from))
        return { state, effects };
      invariant(
        event.outcome === "committed",
        () => `${event.from} acknowledged ${event.outcome} of a committed transaction`,
      );
      const acked = [...state.acked, event.from];
      const next = { ...state, acked };
      if (!state.participants.every((id) => acked.includes(id))) return { state: next, effects };
      const released = releaseAll(next, effects);
      effects.push({ type: "persist-end", txnId: state.txnId, outcome: "committed" });
      effects.push({ type: "finished", outcome: "committed", reason: null });
      return { state: { ...released, phase: "done" }, effects };
    }
    case "tick":
      return { state: onTick(state, event.random01, now, effects), effects };
  }
}

function onLeaseReply(
  state: CoordinatorState,
  event: Extract<CoordinatorEvent, { type: "lease-reply" }>,
  now: number,
  effects: CoordinatorEffect[],
): CoordinatorState {
  const { reply, from } = event;
  const lease = state.leases[from];
  if (reply.type === "renewed" && lease && lease.token === reply.token && lease.renewSentAtMonoMs !== null) {
    const base = lease.renewSentAtMonoMs;
    return {
      ...state,
      leases: {
        ...state.leases,
        [from]: {
          ...lease,
          deadlineMonoMs: base + reply.ttlMs - state.config.driftAllowanceMs,
          renewAtMonoMs: base + reply.ttlMs / 3,
          renewSentAtMonoMs: null,
        },
      },
    };
  }
  if (reply.type === "lost" && lease && lease.token === reply.token) {
    const without = { ...state.leases };
    delete without[from];
    const next = { ...state, leases: without };
    // Before the decision a lost lease aborts; after it, the decision stands and is resent regardless.
    return state.phase === "preparing" || state.phase === "acquiring"
      ? abort(next, `lost the lease on ${from}: ${reply.reason}`, effects)
      : state;
  }
  const pending = state.pending[from];
  if (reply.type === "granted" && (state.phase !== "acquiring" || pending?.requestId !== reply.requestId)) {
    // A grant for a request given up on (an earlier attempt, or after an abort): hand it straight back.
    if (!lease || lease.token !== reply.token)
      effects.push({ type: "send", to: from, message: { type: "release", token: reply.token } });
    return state;
  }
  if (state.phase !== "acquiring" || !pending) return state;
  if (reply.type === "granted") {
    const held: HeldLease = {
      token: reply.token,
      deadlineMonoMs: pending.sentAtMonoMs + reply.ttlMs - state.config.driftAllowanceMs,
      renewAtMonoMs: pending.sentAtMonoMs + reply.ttlMs / 3,
      renewSentAtMonoMs: null,
    };
    const rest = { ...state.pending };
    delete rest[from];
    return acquireAll({ ...state, leases: { ...state.leases, [from]: held }, pending: rest }, now, effects);
  }
  if ((reply.type === "denied" && reply.requestId === pending.requestId) || reply.type === "unavailable") {
    const why =
      reply.type === "denied"
        ? `${from} is locked by ${reply.holder || "another holder"}`
        : `${from}: ${reply.reason}`;
    return backOff(state, why, effects);
  }
  return state;
}

function backOff(state: CoordinatorState, why: string, effects: CoordinatorEffect[]): CoordinatorState {
  const released = releaseAll({ ...state, pending: {} }, effects);
  if (state.attempt + 1 >= state.config.maxAcquireAttempts)
    return abort(
      { ...released, phase: "acquiring" },
      `could not take every lease after ${state.attempt + 1} attempts: ${why}`,
      effects,
    );
  return { ...released, phase: "backing-off", attempt: state.attempt + 1, retryAtMonoMs: null, reason: why };
}

function onTick(
  state: CoordinatorState,
  random01: number,
  now: number,
  effects: CoordinatorEffect[],
): CoordinatorState {
  switch (state.phase) {
    case "backing-off": {
      if (state.retryAtMonoMs === null)
        return {
          ...state,
          retryAtMonoMs: now + backoffDelayMs(state.config.backoff, state.attempt - 1, random01),
        };
      if (now < state.retryAtMonoMs) return state;
      return acquireAll({ ...state, retryAtMonoMs: null }, now, effects);
    }
    case "acquiring": {
      const silent = Object.entries(state.pending).find(
        ([, p]) => now - p.sentAtMonoMs >= state.config.requestTimeoutMs,
      );
      if (silent) return backOff(state, `${silent[0]} did not answer the lease request`, effects);
      return renew(state, now, effects);
    }
    case "preparing": {
      if (state.prepareDeadlineMonoMs !== null && now >= state.prepareDeadlineMonoMs) {
        const silent = state.participants.filter((id) => !state.votes[id]);
        return abort(
          state,
          `no vote from ${silent.join(", ")} within ${state.config.voteTimeoutMs} ms`,
          effects,
        );
      }
      const expired = state.participants.find((id) => (state.leases[id]?.deadlineMonoMs ?? 0) <= now);
      if (expired) return abort(state, `the lease on ${expired} ran out before the decision`, effects);
      return renew(state, now, effects);
    }
    case "committing":
      return now - state.lastSendMonoMs >= state.config.resendMs ? sendDecisions(state, now, effects) : state;
    case "done":
      return state;
  }
}

function renew(state: CoordinatorState, now: number, effects: CoordinatorEffect[]): CoordinatorState {
  let leases = state.leases;
  for (const [id, lease] of Object.entries(state.leases)) {
    if (now < lease.renewAtMonoMs) continue;
    // An unanswered renewal is sent again after the request timeout.
    if (lease.renewSentAtMonoMs !== null && now - lease.renewSentAtMonoMs < state.config.requestTimeoutMs)
      continue;
    effects.push({
      type: "send",
      to: id,
      message: { type: "renew", token: lease.token, ttlMs: state.config.leaseTtlMs },
    });
    leases = { ...leases, [id]: { ...lease, renewSentAtMonoMs: now } };
  }
  return leases === state.leases ? state : { ...state, leases };
}
