import type { CoordinatorConfig, stepCoordinator } from "../../core/corridor/coordinator.js";
import type { Outcome, PlanRef } from "../../core/corridor/participant.js";
import type { Clock } from "../clock.js";
import type { DecisionKeyPair } from "./decision-keys.js";
import type { CorridorNetwork } from "./participant-ports.js";

/**
 * The ports of the coordinator shell (`coordinator-shell.ts`). Production plugs in the coordinator's
 * SQLite log and MQTT (gateway/node/coordinator-host.ts, for `plan push` and a gateway alike); the
 * simulator its simulated log, network and clock (simulators/corridor/sim-coordinator.ts).
 */

/** A commit record of the coordinator's log, with the fencing tokens it prepared with. */
export interface CommitRecord {
  readonly txnId: string;
  readonly participants: readonly string[];
  readonly plan: PlanRef;
  readonly activationWallMs: number;
  readonly tokens: Readonly<Record<string, number>>;
  /** The run's signature of its decision (decision-signature.ts), written with it; absent in an older log. */
  readonly signature?: string;
}

/** A decision as the log holds it: the outcome, and its signature when the log has one. */
export interface LoggedDecision {
  readonly outcome: Outcome;
  readonly signature: string | null;
}

/** The coordinator's decision log. */
export interface CoordinatorLog {
  /** Forced: the commit point; no COMMIT leaves before it is on disk. */
  persistCommit(record: CommitRecord, atWallMs: number): void;
  /** Lazy: the transaction needs nothing more (a crash that loses it only resends COMMIT). */
  persistEnd(record: CommitRecord & { readonly outcome: Outcome }, atWallMs: number): void;
  /** What the log holds of a transaction; null: nothing (presumed abort). */
  decisionOf(txnId: string): LoggedDecision | null;
  /** Committed transactions of this coordinator not yet acknowledged by all: a restart finishes them. */
  unfinished(): CommitRecord[];
}

/** A decision, retained on the broker for participants that ask after the coordinator is gone. */
export interface RetainedDecisionRecord {
  readonly txnId: string;
  readonly outcome: Outcome;
  readonly participants: readonly string[];
  readonly activationWallMs: number;
  /** The coordinator's signature of the outcome: a participant reading a copy anywhere can check it. */
  readonly signature?: string;
}

export interface CoordinatorPorts {
  readonly me: string;
  readonly config: CoordinatorConfig;
  readonly log: CoordinatorLog;
  readonly network: CorridorNetwork;
  readonly retain: (record: RetainedDecisionRecord) => void;
  readonly clock: Clock;
  /** The back-off's jitter: `Math.random` in production, the seeded source in the simulator. */
  readonly random01: () => number;
  /** A run's end (decided and acknowledged, or aborted), for the host's log or trace. */
  readonly finished?: (txnId: string, outcome: Outcome, reason: string | null) => void;
  /** The coordinator machine's step: `stepCoordinator`; injectable for the simulator's mutations. */
  readonly step?: typeof stepCoordinator;
  /**
   * A new run's decision key pair: random (`newDecisionKeyPair()`) by default; the simulator derives
   * it from the transaction's id, so that a run replays exactly.
   */
  readonly newDecisionKeys?: (txnId: string) => DecisionKeyPair;
}
