import { invariant } from "../invariant.js";

/**
 * The lease authority of one intersection, run by that intersection's gateway: a pure state machine.
 * It alone decides expiry, on its own monotonic clock. Fencing tokens are strictly increasing, also
 * across restarts: a token is `epoch × TOKENS_PER_EPOCH + n`, and the epoch is made durable (the
 * `persist-epoch` effect, forced) before the first token of that epoch is handed out.
 */

export const TOKENS_PER_EPOCH = 1 << 20;
/** A lease longer than this is refused: a holder that died must not block a corridor for long. */
export const MAX_LEASE_TTL_MS = 60_000;
export const MIN_LEASE_TTL_MS = 1000;

export interface Lease {
  readonly holder: string;
  readonly token: number;
  readonly expiresAtMonoMs: number;
  /** The request that obtained it, so that a duplicated request gets the same grant back. */
  readonly requestId: string;
}

export interface LeaseAuthorityState {
  readonly epoch: number;
  /** Tokens handed out in this epoch. */
  readonly issued: number;
  /** True once the epoch is durable: nothing is granted before. */
  readonly epochDurable: boolean;
  readonly lease: Lease | null;
  /** The highest token this authority ever handed out (0: none). */
  readonly lastToken: number;
}

export type LeaseRequest =
  | { readonly type: "acquire"; readonly holder: string; readonly requestId: string; readonly ttlMs: number }
  | { readonly type: "renew"; readonly holder: string; readonly token: number; readonly ttlMs: number }
  | { readonly type: "release"; readonly holder: string; readonly token: number };

export type LeaseAuthorityEvent = LeaseRequest | { readonly type: "epoch-durable" };

export type LeaseReply =
  | { readonly type: "granted"; readonly requestId: string; readonly token: number; readonly ttlMs: number }
  | { readonly type: "renewed"; readonly token: number; readonly ttlMs: number }
  | {
      readonly type: "denied";
      readonly requestId: string;
      readonly holder: string;
      readonly retryAfterMs: number;
    }
  | { readonly type: "lost"; readonly token: number; readonly reason: string }
  | { readonly type: "released"; readonly token: number }
  | { readonly type: "unavailable"; readonly reason: string };

export type LeaseAuthorityEffect =
  | { readonly type: "persist-epoch"; readonly epoch: number }
  | { readonly type: "reply"; readonly to: string; readonly reply: LeaseReply };

export interface LeaseAuthorityStep {
  readonly state: LeaseAuthorityState;
  readonly effects: readonly LeaseAuthorityEffect[];
}

/** A (re)started authority: one epoch past the last durable one, not usable until that is durable. */
export function startLeaseAuthority(lastDurableEpoch: number): LeaseAuthorityStep {
  invariant(Number.isSafeInteger(lastDurableEpoch) && lastDurableEpoch >= 0, "epoch must be a whole number");
  const epoch = lastDurableEpoch + 1;
  return {
    state: { epoch, issued: 0, epochDurable: false, lease: null, lastToken: 0 },
    effects: [{ type: "persist-epoch", epoch }],
  };
}

/**
 * No token below this can name a lease this authority holds: the newest it handed out, and at least
 * the start of its epoch — a restart loses the leases, so every token of an earlier incarnation is
 * void (found by the corridor simulator: a coordinator stalled across the authority's restart came
 * back with a token older than one the authority had issued before it went down).
 */
export function fencingFloor(state: LeaseAuthorityState): number {
  return Math.max(state.lastToken, state.epoch * TOKENS_PER_EPOCH);
}

export function currentLease(state: LeaseAuthorityState, nowMonoMs: number): Lease | null {
  return state.lease && state.lease.expiresAtMonoMs > nowMonoMs ? state.lease : null;
}

export function stepLeaseAuthority(
  state: LeaseAuthorityState,
  event: LeaseAuthorityEvent,
  nowMonoMs: number,
): LeaseAuthorityStep {
  const step = handle(state, event, nowMonoMs);
  assertLeaseStep(state, step);
  return step;
}

/**
 * What every step guarantees. Fencing tokens only grow, and never past what the epoch's counter
 * issued (so the next grant is above every earlier one, also across an epoch change); a grant is only
 * made with the epoch durable, and names the lease then in force.
 */
function assertLeaseStep(before: LeaseAuthorityState, step: LeaseAuthorityStep): void {
  const { state, effects } = step;
  invariant(
    state.epoch >= before.epoch && state.lastToken >= before.lastToken,
    () =>
      `epoch or token went down: ${before.epoch}/${before.lastToken} to ${state.epoch}/${state.lastToken}`,
  );
  invariant(
    state.lastToken <= state.epoch * TOKENS_PER_EPOCH + state.issued && state.issued < TOKENS_PER_EPOCH,
    () => `token ${state.lastToken} beyond epoch ${state.epoch}'s ${state.issued} issued`,
  );
  for (const effect of effects)
    if (effect.type === "reply" && effect.reply.type === "granted")
      invariant(
        state.epochDurable && state.lease?.token === effect.reply.token && state.lease.holder === effect.to,
        () =>
          `token ${effect.reply.type === "granted" ? effect.reply.token : ""} granted to ${effect.to} with the epoch not durable or another lease in force`,
      );
}

function handle(
  state: LeaseAuthorityState,
  event: LeaseAuthorityEvent,
  nowMonoMs: number,
): LeaseAuthorityStep {
  if (event.type === "epoch-durable") return { state: { ...state, epochDurable: true }, effects: [] };
  const reply = (r: LeaseReply, next = state): LeaseAuthorityStep => ({
    state: next,
    effects: [{ type: "reply", to: event.holder, reply: r }],
  });
  if (!state.epochDurable) return reply({ type: "unavailable", reason: "the lease authority is starting" });
  const held = currentLease(state, nowMonoMs);
  switch (event.type) {
    case "acquire": {
      if (!(event.ttlMs >= MIN_LEASE_TTL_MS && event.ttlMs <= MAX_LEASE_TTL_MS))
        return reply({
          type: "denied",
          requestId: event.requestId,
          holder: held?.holder ?? "",
          retryAfterMs: 0,
        });
      if (held && held.holder === event.holder && held.requestId === event.requestId)
        return reply({
          type: "granted",
          requestId: event.requestId,
          token: held.token,
          ttlMs: held.expiresAtMonoMs - nowMonoMs,
        });
      if (held)
        return reply({
          type: "denied",
          requestId: event.requestId,
          holder: held.holder,
          retryAfterMs: held.expiresAtMonoMs - nowMonoMs,
        });
      return grant(state, event, nowMonoMs);
    }
    case "renew": {
      if (!held || held.token !== event.token || held.holder !== event.holder)
        return reply({
          type: "lost",
          token: event.token,
          reason: held ? `held by ${held.holder}` : "expired",
        });
      const ttlMs = Math.min(Math.max(event.ttlMs, MIN_LEASE_TTL_MS), MAX_LEASE_TTL_MS);
      return reply(
        { type: "renewed", token: held.token, ttlMs },
        { ...state, lease: { ...held, expiresAtMonoMs: nowMonoMs + ttlMs } },
      );
    }
    case "release": {
      if (held && held.token === event.token && held.holder === event.holder)
        return reply({ type: "released", token: event.token }, { ...state, lease: null });
      return reply({ type: "released", token: event.token });
    }
  }
}

function grant(
  state: LeaseAuthorityState,
  event: Extract<LeaseRequest, { type: "acquire" }>,
  nowMonoMs: number,
): LeaseAuthorityStep {
  const effects: LeaseAuthorityEffect[] = [];
  let { epoch, issued } = state;
  if (issued + 1 >= TOKENS_PER_EPOCH) {
    // An epoch is used up: the next one must be durable before its first token, so refuse for now.
    epoch += 1;
    issued = 0;
    return {
      state: { ...state, epoch, issued, epochDurable: false },
      effects: [
        { type: "persist-epoch", epoch },
        {
          type: "reply",
          to: event.holder,
          reply: { type: "unavailable", reason: "new epoch being made durable" },
        },
      ],
    };
  }
  issued += 1;
  const token = epoch * TOKENS_PER_EPOCH + issued;
  invariant(token > state.lastToken, `fencing token ${token} is not above ${state.lastToken}`);
  const lease: Lease = {
    holder: event.holder,
    token,
    expiresAtMonoMs: nowMonoMs + event.ttlMs,
    requestId: event.requestId,
  };
  effects.push({
    type: "reply",
    to: event.holder,
    reply: { type: "granted", requestId: event.requestId, token, ttlMs: event.ttlMs },
  });
  return { state: { ...state, epoch, issued, lease, lastToken: token }, effects };
}
