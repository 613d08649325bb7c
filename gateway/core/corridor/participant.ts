import { invariant } from "../invariant.js";
import type { DecisionProof } from "./decision-signature.js";

/**
 * The two-phase-commit participant of one intersection: a pure state machine. It votes yes only after
 * the shell validated the plan (the signal core's checks, clock health, time to meet the activation
 * instant) and after PREPARED is force-written; once it voted yes only the decision ends its doubt —
 * from the coordinator itself, a copy of its signed decision held by anyone (a peer's answer in
 * cooperative termination, a retained record), or an operator. No other party's word ends it: a peer
 * that says it never voted may be lying, and believing it could split the corridor (issue 20).
 * Every handler is idempotent by transaction id; finished transactions leave tombstones.
 */

/**
 * Finished transactions remembered, at most (oldest forgotten first), in each of two kinds: outcomes of
 * transactions this intersection prepared, and refusals of ones it never prepared. Kept apart so that
 * refusals — which anyone can cause by asking about made-up transactions — never push out a real
 * outcome (found by the corridor simulator's flood).
 */
export const MAX_TOMBSTONES = 256;
/** An in-doubt participant asks for the decision this often, backing off to the cap. */
export const INQUIRY_FIRST_MS = 1000;
export const INQUIRY_MAX_MS = 30_000;

export interface PlanRef {
  readonly planId: string;
  readonly version: number;
  /**
   * The plan's content digest (plan-identity.ts), where the coordinator knows it: it sends it with the
   * PREPARE. A participant keeps one content per (id, version), so its records name plans without it.
   */
  readonly digest?: string;
  /**
   * For a manual plan change while a schedule runs: how long it wins over the schedule — until an
   * instant, or `hold` (until the next schedule push). Absent: until the schedule's next change.
   */
  readonly until?: number | "hold";
}

export interface PreparedTxn {
  readonly txnId: string;
  readonly coordinator: string;
  readonly token: number;
  readonly participants: readonly string[];
  readonly plan: PlanRef;
  readonly activationWallMs: number;
  /**
   * The coordinator run's public key for this transaction's decision (core/corridor/decision-signature.ts):
   * a decision that does not come from the coordinator itself counts only with its signature. Absent:
   * a PREPARE from a coordinator that does not sign its decisions (then only its own word counts).
   */
  readonly decisionKey?: string;
}

export type Outcome = "committed" | "aborted";

export interface Tombstone {
  readonly txnId: string;
  readonly outcome: Outcome;
  /** Whose decision it was (absent in a record of an older release). */
  readonly coordinator?: string;
  /** The coordinator's signature of it, forwarded intact to peers that ask (absent: none was had). */
  readonly signature?: string;
}

export interface ParticipantState {
  readonly intersection: string;
  /** The highest fencing token accepted (stored with the state change it allowed). */
  readonly highestToken: number;
  /** The transaction this intersection is in doubt about (PREPARED), if any: at most one at a time. */
  readonly prepared: PreparedTxn | null;
  readonly nextInquiryMonoMs: number | null;
  readonly inquiryBackoffMs: number;
  /** Outcomes of transactions this intersection prepared (voted yes on). */
  readonly tombstones: readonly Tombstone[];
  /** Transactions aborted here without having been prepared: a no vote, an answered inquiry, an abort heard of. */
  readonly refusals: readonly string[];
}

/** What the shell found when it checked a PREPARE against its intersection, before the machine sees it. */
export type PrepareVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type ParticipantEvent =
  | {
      readonly type: "prepare";
      readonly txn: PreparedTxn;
      readonly verdict: PrepareVerdict;
      /** Below this no token names a live lease of this intersection's authority (`fencingFloor`). */
      readonly lastIssuedToken: number;
      /**
       * The lease this intersection's own authority holds live now (holder and token), or null: a
       * PREPARE is taken only under the lease that authority granted its coordinator — a token it never
       * granted (made up, or another's) must not raise the fencing floor for good (issue 20).
       */
      readonly lease: {
        readonly holder: string;
        readonly token: number;
        /**
         * The request it was granted for: a coordinator asks for each transaction's leases as
         * `<txnId>/<attempt>/<intersection>`, so that a lease serves the one transaction it was taken
         * for (issue 20, item 1: "granted to that coordinator for that transaction"). Absent: not checked.
         */
        readonly requestId?: string;
      } | null;
    }
  | {
      readonly type: "decision";
      readonly txnId: string;
      readonly outcome: Outcome;
      /**
       * How it came: a decision message (COMMIT or ABORT), an answer to this participant's inquiry, a
       * retained decision record, or an operator's resolution of a transaction whose coordinator is gone.
       */
      readonly via: "decision" | "answer" | "record" | "operator";
      /**
       * Who sent it, as the broker vouches for it: the inbox topic's sender, the branch the record was
       * published under, the operator's login — never a name the message itself claims.
       */
      readonly by: string;
      /** The coordinator's signature it carried, if any. */
      readonly signature: string | null;
      /** What the shell found of that signature (decision-signature.ts). */
      readonly proof: DecisionProof;
    }
  /** A peer in doubt asks what this intersection knows of a transaction. */
  | { readonly type: "inquiry"; readonly txnId: string; readonly from: string }
  | { readonly type: "tick" };

export type InquiryAnswer = Outcome | "prepared";

export type ParticipantEffect =
  /** Force-write (synchronous FULL) before anything that follows in the same step. */
  | { readonly type: "persist-prepared"; readonly txn: PreparedTxn; readonly highestToken: number }
  | {
      readonly type: "persist-outcome";
      readonly txnId: string;
      readonly outcome: Outcome;
      readonly forced: boolean;
      /** The coordinator's signature of the outcome, kept to forward to peers that ask. */
      readonly signature: string | null;
    }
  | {
      readonly type: "vote";
      readonly to: string;
      readonly txnId: string;
      readonly yes: boolean;
      readonly reason: string | null;
    }
  | { readonly type: "ack"; readonly to: string; readonly txnId: string; readonly outcome: Outcome }
  /** Take the plan at the activation instant (late: at the next cycle boundary, reporting the lateness). */
  | { readonly type: "apply-plan"; readonly txn: PreparedTxn }
  | { readonly type: "ask-decision"; readonly txn: PreparedTxn }
  | {
      readonly type: "answer-inquiry";
      readonly to: string;
      readonly txnId: string;
      readonly answer: InquiryAnswer;
      /** The coordinator's signature of the outcome, when this participant holds one: forwarded intact. */
      readonly signature: string | null;
    }
  | { readonly type: "report"; readonly message: string };

export interface ParticipantStep {
  readonly state: ParticipantState;
  readonly effects: readonly ParticipantEffect[];
}

export function startParticipant(
  intersection: string,
  restored: {
    highestToken: number;
    prepared: PreparedTxn | null;
    tombstones: readonly Tombstone[];
    refusals?: readonly string[];
  },
  nowMonoMs: number,
): ParticipantState {
  return {
    intersection,
    highestToken: restored.highestToken,
    prepared: restored.prepared,
    // A participant that restarts in doubt asks at once.
    nextInquiryMonoMs: restored.prepared ? nowMonoMs : null,
    inquiryBackoffMs: INQUIRY_FIRST_MS,
    tombstones: restored.tombstones.slice(-MAX_TOMBSTONES),
    refusals: (restored.refusals ?? []).slice(-MAX_TOMBSTONES),
  };
}

export function outcomeOf(state: ParticipantState, txnId: string): InquiryAnswer | null {
  if (state.prepared?.txnId === txnId) return "prepared";
  const outcome = state.tombstones.find((t) => t.txnId === txnId)?.outcome;
  if (outcome) return outcome;
  return state.refusals.includes(txnId) ? "aborted" : null;
}

/** The outcome of the transaction this intersection prepared: a real one, never pushed out by refusals. */
function bury(state: ParticipantState, tombstone: Tombstone): ParticipantState {
  const tombstones = [...state.tombstones.filter((t) => t.txnId !== tombstone.txnId), tombstone].slice(
    -MAX_TOMBSTONES,
  );
  const next = { ...state, tombstones };
  invariant(next.tombstones.length <= MAX_TOMBSTONES, "tombstones past their bound");
  return next;
}

/** A transaction aborted here without having been prepared. */
function refuse(state: ParticipantState, txnId: string): ParticipantState {
  invariant(state.prepared?.txnId !== txnId, () => `refusing ${txnId}, which is prepared here`);
  const refusals = [...state.refusals.filter((t) => t !== txnId), txnId].slice(-MAX_TOMBSTONES);
  return { ...state, refusals };
}

export function stepParticipant(
  state: ParticipantState,
  event: ParticipantEvent,
  nowMonoMs: number,
): ParticipantStep {
  const step = handle(state, event, nowMonoMs);
  assertParticipantStep(state, step);
  return step;
}

/**
 * What every step guarantees (cheap: a step has a handful of effects; the tombstone search runs only
 * for a yes vote). The fencing floor never goes down; a newly prepared transaction is force-written
 * first, before its vote; a yes vote is only ever given for a transaction prepared or committed here;
 * a plan is applied only after its commit is force-written; both memories stay within their bound.
 */
function assertParticipantStep(before: ParticipantState, step: ParticipantStep): void {
  const { state, effects } = step;
  invariant(
    state.highestToken >= before.highestToken,
    () => `fencing floor went down from ${before.highestToken} to ${state.highestToken}`,
  );
  if (state.prepared !== null && state.prepared !== before.prepared) {
    const first = effects[0];
    invariant(
      first?.type === "persist-prepared" && first.txn === state.prepared,
      () => `transaction ${state.prepared?.txnId} prepared without being force-written first`,
    );
  }
  let committedDurably = false;
  for (const effect of effects) {
    if (effect.type === "vote" && effect.yes) {
      const known = outcomeOf(state, effect.txnId);
      invariant(
        known === "prepared" || known === "committed",
        () => `yes vote on ${effect.txnId}, which is ${known ?? "unknown"} here`,
      );
    }
    if (effect.type === "persist-outcome" && effect.outcome === "committed" && effect.forced)
      committedDurably = true;
    if (effect.type === "apply-plan")
      invariant(committedDurably, () => `plan of ${effect.txn.txnId} applied before its commit was forced`);
  }
  invariant(
    state.tombstones.length <= MAX_TOMBSTONES && state.refusals.length <= MAX_TOMBSTONES,
    "tombstones or refusals past their bound",
  );
}

function handle(state: ParticipantState, event: ParticipantEvent, nowMonoMs: number): ParticipantStep {
  switch (event.type) {
    case "prepare":
      return prepare(state, event, nowMonoMs);
    case "decision":
      return decide(state, event);
    case "inquiry":
      return inquiry(state, event);
    case "tick": {
      if (!state.prepared || state.nextInquiryMonoMs === null || nowMonoMs < state.nextInquiryMonoMs)
        return { state, effects: [] };
      const backoff = Math.min(state.inquiryBackoffMs * 2, INQUIRY_MAX_MS);
      return {
        state: { ...state, nextInquiryMonoMs: nowMonoMs + state.inquiryBackoffMs, inquiryBackoffMs: backoff },
        effects: [{ type: "ask-decision", txn: state.prepared }],
      };
    }
  }
}

function prepare(
  state: ParticipantState,
  event: Extract<ParticipantEvent, { type: "prepare" }>,
  nowMonoMs: number,
): ParticipantStep {
  const { txn } = event;
  const vote = (yes: boolean, reason: string | null): ParticipantEffect => ({
    type: "vote",
    to: txn.coordinator,
    txnId: txn.txnId,
    yes,
    reason,
  });
  const known = outcomeOf(state, txn.txnId);
  // Duplicates and late copies: answer as before, change nothing.
  if (known === "prepared" || known === "committed") return { state, effects: [vote(true, null)] };
  if (known === "aborted")
    return { state, effects: [vote(false, "this transaction was already aborted here")] };
  const floor = Math.max(state.highestToken, event.lastIssuedToken);
  const refusal =
    txn.token < floor
      ? `fencing token ${txn.token} is older than ${floor}: another coordinator holds or held this intersection, or its gateway restarted since the lease was granted`
      : event.lease?.holder !== txn.coordinator || event.lease.token !== txn.token
        ? notGranted(txn, event.lease)
        : event.lease.requestId !== undefined && !event.lease.requestId.startsWith(`${txn.txnId}/`)
          ? `the lease ${txn.coordinator} holds here (token ${txn.token}) was taken for another transaction (request ${event.lease.requestId}), not ${txn.txnId}: a lease serves the transaction it was taken for`
          : state.prepared
            ? `in doubt about transaction ${state.prepared.txnId}: one change at a time`
            : !txn.participants.includes(state.intersection)
              ? `${state.intersection} is not among the transaction's participants`
              : event.verdict.ok
                ? null
                : event.verdict.reason;
  if (refusal !== null) {
    // A no vote needs no forced write: with no PREPARED record, the transaction is aborted here.
    return { state: refuse(state, txn.txnId), effects: [vote(false, refusal)] };
  }
  invariant(txn.token >= state.highestToken, "a prepare below the fencing floor was about to be accepted");
  return {
    state: {
      ...state,
      highestToken: txn.token,
      prepared: txn,
      nextInquiryMonoMs: nowMonoMs + INQUIRY_FIRST_MS * 5,
      inquiryBackoffMs: INQUIRY_FIRST_MS,
    },
    effects: [{ type: "persist-prepared", txn, highestToken: txn.token }, vote(true, null)],
  };
}

/** Why a PREPARE's token is not one this intersection's authority granted its coordinator. */
function notGranted(
  txn: PreparedTxn,
  lease: { readonly holder: string; readonly token: number } | null,
): string {
  const held = lease
    ? `its lease is held by ${lease.holder} with token ${lease.token}`
    : "no lease is held here";
  return `fencing token ${txn.token} was not granted to ${txn.coordinator} by this intersection's lease authority (${held}): take the lease first, or take it again if it ran out`;
}

function decide(
  state: ParticipantState,
  event: Extract<ParticipantEvent, { type: "decision" }>,
): ParticipantStep {
  const known = outcomeOf(state, event.txnId);
  const { by, via } = event;
  // A decision message is acknowledged, whoever sent it: an acknowledgement changes nothing anywhere.
  const ack = (outcome: Outcome): ParticipantEffect[] =>
    via === "decision" ? [{ type: "ack", to: by, txnId: event.txnId, outcome }] : [];
  const report = (message: string): ParticipantEffect => ({ type: "report", message });
  if (known === "committed" || known === "aborted") {
    if (known === event.outcome) return { state, effects: ack(known) };
    // Outcomes never change. A contradiction comes from a party that is not the coordinator (its own
    // word is no decision), or from a copy of the coordinator's that is not what it signed.
    return {
      state,
      effects: [
        report(`transaction ${event.txnId} is ${known} here: ${by}'s "${event.outcome}" (${via}) ignored`),
      ],
    };
  }
  if (known === null) {
    // Never prepared here: a commit cannot concern us (we never voted yes); an abort is remembered so
    // that a late PREPARE is refused.
    if (event.outcome === "committed")
      return {
        state,
        effects: [report(`commit of unknown transaction ${event.txnId} from ${by} ignored`)],
      };
    return { state: refuse(state, event.txnId), effects: ack("aborted") };
  }
  const txn = state.prepared as PreparedTxn;
  const refusal = decisionRefusal(txn, event);
  if (refusal !== null) return { state, effects: [report(refusal)] };
  const signature = event.proof === "valid" ? event.signature : null;
  const next: ParticipantState = {
    ...bury(state, {
      txnId: txn.txnId,
      outcome: event.outcome,
      coordinator: txn.coordinator,
      ...(signature !== null ? { signature } : {}),
    }),
    prepared: null,
    nextInquiryMonoMs: null,
  };
  const effects: ParticipantEffect[] = [
    {
      type: "persist-outcome",
      txnId: txn.txnId,
      outcome: event.outcome,
      forced: event.outcome === "committed",
      signature,
    },
  ];
  if (event.outcome === "committed") effects.push({ type: "apply-plan", txn });
  effects.push(...ack(event.outcome));
  if (by !== txn.coordinator || via !== "decision")
    effects.push(
      report(
        `transaction ${txn.txnId} ${event.outcome}: learned from ${via === "operator" ? "operator" : via === "record" ? "the retained record of" : "the answer of"} ${by}${by !== txn.coordinator && via !== "operator" ? `, signed by its coordinator ${txn.coordinator}` : ""}`,
      ),
    );
  return { state: next, effects };
}

/**
 * Why a decision about the transaction in doubt does not end the doubt, or null when it does. It must
 * be the coordinator's: a copy of its signed decision, from anyone; its own unsigned abort (a coordinator
 * that restarted before deciding has lost its key: presumed abort), or any decision of its own when its
 * PREPARE carried no key (an older release); or an operator's resolution. A signature that does not
 * verify is refused whoever sent it; a COMMIT without one is refused even in the coordinator's name
 * (a broker that forges senders cannot make a gateway commit).
 */
function decisionRefusal(
  txn: PreparedTxn,
  event: Extract<ParticipantEvent, { type: "decision" }>,
): string | null {
  const what = `${event.by}'s "${event.outcome}" for transaction ${txn.txnId} (${event.via})`;
  if (event.proof === "invalid")
    return `${what} carries a signature that does not verify with the coordinator's decision key: ignored (forged, or made for another transaction or outcome)`;
  if (event.proof === "valid" || event.via === "operator") return null;
  if (event.by === txn.coordinator) {
    if (event.outcome === "aborted" || txn.decisionKey === undefined) return null;
    return `${what} carries no signature, and its PREPARE came with a decision key: ignored (every COMMIT of this coordinator is signed)`;
  }
  // Another party's own word: a bystander never heard of the transaction, and a party may lie about its vote.
  const party = txn.participants.includes(event.by);
  return `${what} carries no signature of its coordinator ${txn.coordinator}: ignored (${party ? "a participant's own word cannot end the doubt: only the coordinator's decision can" : `${event.by} is not a party to it`})`;
}

function inquiry(
  state: ParticipantState,
  event: Extract<ParticipantEvent, { type: "inquiry" }>,
): ParticipantStep {
  const known = outcomeOf(state, event.txnId);
  if (known !== null)
    return {
      state,
      effects: [
        {
          type: "answer-inquiry",
          to: event.from,
          txnId: event.txnId,
          answer: known,
          signature: state.tombstones.find((t) => t.txnId === event.txnId)?.signature ?? null,
        },
      ],
    };
  // Not voted yet: this intersection may abort on its own, and from now on refuses to vote yes. That
  // refusal is durable before the answer, or a restart could let a late PREPARE through.
  return {
    state: refuse(state, event.txnId),
    effects: [
      { type: "persist-outcome", txnId: event.txnId, outcome: "aborted", forced: true, signature: null },
      { type: "answer-inquiry", to: event.from, txnId: event.txnId, answer: "aborted", signature: null },
    ],
  };
}
