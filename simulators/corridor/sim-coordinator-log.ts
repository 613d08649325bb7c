import type { Outcome } from "../../gateway/core/corridor/participant.js";
import type {
  CommitRecord,
  CoordinatorLog,
  LoggedDecision,
} from "../../gateway/shell/corridor/coordinator-ports.js";
import type { SeededRandom } from "./random.js";

/**
 * A coordinator's decision log as the coordinator store keeps it: commit records forced, end records
 * lazy — a crash keeps a random prefix of the end records written since the last forced write.
 */
export class SimCoordinatorLog implements CoordinatorLog {
  private readonly commits = new Map<string, CommitRecord>();
  private readonly ends = new Map<string, LoggedDecision>();
  /** End records written since the last forced write: a crash may lose them. */
  private unsyncedEnds: string[] = [];

  persistCommit(record: CommitRecord): void {
    this.commits.set(record.txnId, record);
    // A forced write: earlier lazy end records are durable too.
    this.unsyncedEnds = [];
  }

  persistEnd(record: CommitRecord & { readonly outcome: Outcome }): void {
    this.ends.set(record.txnId, { outcome: record.outcome, signature: record.signature ?? null });
    this.unsyncedEnds.push(record.txnId);
  }

  /** As the store: an end record's decision, else a commit record's; null when it holds neither. */
  decisionOf(txnId: string): LoggedDecision | null {
    const ended = this.ends.get(txnId);
    if (ended) return ended;
    const commit = this.commits.get(txnId);
    return commit ? { outcome: "committed", signature: commit.signature ?? null } : null;
  }

  unfinished(): CommitRecord[] {
    return [...this.commits.values()].filter((record) => !this.ends.has(record.txnId));
  }

  crash(random: SeededRandom): void {
    const kept = random.int(0, this.unsyncedEnds.length);
    for (const txnId of this.unsyncedEnds.slice(kept)) this.ends.delete(txnId);
    this.unsyncedEnds = [];
  }
}
