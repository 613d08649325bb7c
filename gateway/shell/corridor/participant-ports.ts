import type { Outcome, PreparedTxn, Tombstone } from "../../core/corridor/participant.js";
import type { PrepareTimingRules } from "../../core/corridor/prepare-check.js";
import { DEFAULT_PREPARE_TIMING_RULES } from "../../core/corridor/prepare-check.js";
import type { PlanInForceRef, StoredTxn } from "../../core/corridor/resume.js";
import type { CommittedChange } from "../../core/schedule/committed-change.js";
import type { CompiledKeyring } from "../../core/corridor/keyring.js";
import type { CorridorBody } from "../../protocol/corridor-messages.js";
import type { PrepareVerdict } from "../../core/corridor/participant.js";
import type { SignedSubject, WireSignature } from "../../core/corridor/plan-signature.js";

/**
 * The ports of the participant shell (`participant-shell.ts`): everything it touches outside the pure
 * lease authority and 2PC participant. Production plugs in SQLite, MQTT and the system clock
 * (gateway/node/corridor-participant.ts); the deterministic simulator its simulated disk, network and
 * clock (simulators/corridor/sim-participant-ports.ts); the unit tests' harness in-memory ones. So the
 * simulator runs the very code that runs on the pole.
 */

/** What a PREPARE brings to keep: a change to run, or the corridor's keyring. */
export type PreparedChange = CommittedChange | CompiledKeyring;

/** What a participant restarts from. */
export interface ParticipantRecord {
  readonly highestToken: number;
  readonly prepared: PreparedTxn | null;
  readonly tombstones: readonly Tombstone[];
  readonly refusals: readonly string[];
}

/**
 * The participant's durable records. A forced write is on disk, with every write before it, when it
 * returns; a lazy one is atomic but a crash may take it back (with the lazy writes after it).
 */
export interface ParticipantDisk {
  leaseEpoch(): number;
  /** Forced: no token of this epoch may be handed out before it is on disk. */
  persistLeaseEpoch(epoch: number): void;
  /** Newest first, each kind to its own bound (`maxTombstones`). */
  participantRecord(maxTombstones: number): ParticipantRecord;
  /** Forced: PREPARED, the compiled plan it would take and the new fencing floor, in one write. */
  persistPrepared(
    txn: PreparedTxn,
    planBody: PreparedChange | null,
    highestToken: number,
    atWallMs: number,
  ): void;
  /**
   * Forced or lazy as the machine says (presumed abort: an abort needs no forced write), with the
   * coordinator's signature of the outcome when there is one (forwarded to peers that ask, also after a restart).
   */
  persistOutcome(
    txnId: string,
    outcome: Outcome,
    forced: boolean,
    atWallMs: number,
    signature: string | null,
  ): void;
  /**
   * A plan, a schedule under its schedule key (core/schedule/committed-change.ts), or a keyring under
   * the keyring key (core/corridor/keyring.ts).
   */
  planBody(planId: string, version: number): PreparedChange | null;
  /**
   * The newest committed transactions (at most `limit`), most recently written first: changes only,
   * no cancels; a change a cancel took back is marked `cancelled` (core/corridor/plan-cancel.ts).
   */
  committedTransactions(limit: number): StoredTxn[];
  /** What this store holds of a transaction, for a cancel of it; null: nothing. */
  transactionRecord(txnId: string): StoredTransactionRecord | null;
  planInForce(): PlanInForceRef | null;
}

/** A transaction as a cancel of it needs it: its phase, its plan key, its instant, and whether a cancel took it. */
export interface StoredTransactionRecord {
  readonly txn: PreparedTxn;
  readonly phase: string;
  readonly planId: string;
  readonly activationWallMs: number;
  /** The cancel that took it back, or null. */
  readonly cancelledBy: string | null;
}

export interface CorridorNetwork {
  /** Best effort: the protocol resends and asks again, so nothing here waits or retries. */
  send(to: string, body: CorridorBody): void;
}

export type PrepareBody = Extract<CorridorBody, { type: "prepare" }>;

/**
 * The signal core's verdict on a PREPARE's plan (or schedule) for this intersection, with what it would
 * run: the compiled plan, or the schedule with every plan it names compiled.
 */
export type PlanVerdict =
  { readonly ok: true; readonly plan: CommittedChange } | { readonly ok: false; readonly reason: string };

export interface PlanCheck {
  check(body: PrepareBody): PlanVerdict;
}

export interface ParticipantLog {
  warn(message: string): void;
  error(detail: object, message: string): void;
}

/** What the gateway around the participant does for it. */
export interface ParticipantShellHost {
  /** `resumed`: handed again after a restart, rather than just committed. */
  schedulePlan(plan: CommittedChange, txn: PreparedTxn, resumed: boolean): void;
  /**
   * Why the controller could not take a plan change for this instant, or null when it can: its queue
   * of waiting changes is bounded, and a gateway that is stopping takes none.
   */
  planRefusal(activationWallMs: number): string | null;
  /**
   * Take a committed change back from the controller: for good (`final`: its cancel committed; over a
   * running schedule its override ends too), or while a cancel of it is in doubt (handed over again
   * with `schedulePlan` if the cancel aborts).
   */
  withdrawPlan(txnId: string, final: boolean): void;
  audit(type: string, actor: string | null, detail: Record<string, unknown>): void;
  changed(): void;
}

/**
 * Whether a PREPARE's content is signed by a key this gateway trusts (plan-trust.ts): the subject is
 * what this participant compiled (its own digest); the corridor is the trust's own.
 */
export interface SignatureCheck {
  check(subject: Omit<SignedSubject, "corridor">, signature: WireSignature | null): PrepareVerdict;
  /** Where the corridor's keyring in force is kept (the participant's store): its keys count too. */
  useKeyring?(source: () => unknown): void;
  /**
   * A keyring change (core/corridor/keyring.ts): the keyring compiled from the PREPARE's plan file, or
   * why not. `known`: the content this gateway received earlier under the same version, if any.
   */
  checkKeyring(
    planFile: unknown,
    signatures: readonly WireSignature[],
    known: { readonly digest: string } | null,
  ): KeyringVerdict;
}

/** A keyring change's verdict: the keyring this gateway compiled from the PREPARE, or why not. */
export type KeyringVerdict =
  { readonly ok: true; readonly keyring: CompiledKeyring } | { readonly ok: false; readonly reason: string };

export interface CorridorSettings extends PrepareTimingRules {
  /** Our own knowledge of our clock's error (NTP/GPS), when the platform gives it; null: unknown. */
  readonly clockErrorMs: () => number | null;
  /** The trusted keys a PREPARE's plan or schedule must be signed with; absent: unsigned content is taken. */
  readonly planTrust?: SignatureCheck;
}

export const DEFAULT_CORRIDOR_SETTINGS: CorridorSettings = {
  ...DEFAULT_PREPARE_TIMING_RULES,
  clockErrorMs: () => null,
};
