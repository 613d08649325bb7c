import { invariant } from "../core/invariant.js";
import type { StoredEvent } from "./store.js";
import type { SqlAccess } from "./txn-records.js";

/** The audit trail's events and the outbox in the store: their bounds (pruned, counted) and reads. */

/** Drops the oldest messages past the bound (counted): the outbox never grows without end. */
export function boundOutbox(q: SqlAccess, maxOutbox: number): void {
  const { n } = q.statement("SELECT count(*) AS n FROM outbox").get() as { n: number };
  const excess = n - maxOutbox;
  if (excess <= 0) return;
  const result = q
    .statement("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)")
    .run(excess);
  // Postcondition: exactly the excess went (the outbox holds maxOutbox), and the counter says so.
  invariant(result.changes === excess, () => `outbox: ${result.changes} dropped of ${excess} over the bound`);
  q.addToCounter("outbox_dropped", excess);
}

/** Prunes the oldest events past the bound, in batches of 100 (counted). */
export function boundEvents(q: SqlAccess, maxEvents: number, lastSeq: number): void {
  // Pruning in batches keeps the check cheap: count only when the newest seq says it may be needed.
  if (lastSeq <= maxEvents || lastSeq % 100 !== 0) return;
  const result = q.statement("DELETE FROM events WHERE seq <= ?").run(lastSeq - maxEvents);
  if (result.changes > 0) q.addToCounter("events_pruned", result.changes);
  // Postcondition: at most maxEvents kept (every remaining seq is among the last maxEvents; seq is the rowid).
  const { oldest } = q.statement("SELECT min(seq) AS oldest FROM events").get() as {
    oldest: number | null;
  };
  invariant(
    oldest === null || oldest > lastSeq - maxEvents,
    () => `events: seq ${oldest} kept, more than ${maxEvents} before ${lastSeq}`,
  );
}

export function readEvents(q: SqlAccess, afterSeq: number, limit: number): StoredEvent[] {
  const rows = q
    .statement("SELECT seq, at_wall_ms, type, actor, detail FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
    .all(afterSeq, limit) as {
    seq: number;
    at_wall_ms: number;
    type: string;
    actor: string | null;
    detail: string;
  }[];
  return rows.map((row) => ({
    seq: row.seq,
    atWallMs: row.at_wall_ms,
    type: row.type,
    actor: row.actor,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  }));
}
