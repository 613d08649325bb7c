import type { Outcome } from "./participant.js";

/**
 * A row of a coordinator's decision log: the port the coordinator shell reads it through
 * (gateway/shell/corridor/coordinator-host.ts) and the record the SQLite log keeps
 * (gateway/store/coordinator-store.ts). Here, below both, so that neither depends on the other.
 */
export interface DecisionLogEntry {
  readonly txnId: string;
  readonly corridor: string;
  readonly coordinator: string;
  readonly participants: readonly string[];
  readonly planId: string;
  readonly planVersion: number;
  readonly activationWallMs: number;
  readonly tokens: Readonly<Record<string, number>>;
  readonly outcome: Outcome;
  readonly ended: boolean;
  /** The coordinator run's signature of the outcome (decision-signature.ts); null in an older log. */
  readonly signature?: string | null;
}
