import Database from "better-sqlite3";
import { handBackToOwner } from "../store/ownership.js";
import type { StoreFiles } from "./stores.js";

/**
 * Release events in a store's audit trail (the `events` table of migration 1, the same rows the
 * gateway's AuditTrail writes). Written with plain SQL, not through GatewayStore: this code may be
 * newer than the store (after a rollback it is the old release's schema), and opening the store
 * through GatewayStore would migrate it. Migration 1's tables are never edited (migrations.ts), so
 * its columns are there in every schema.
 *
 * The actor is who ran the activation (the operator behind sudo, or root under dpkg): as for every
 * command in the trail, the person accountable for it; `detail.trigger` says whether the health gate
 * or that person decided. Not queued in the outbox: its MQTT message needs the corridor's topics,
 * which only the gateway knows; the status shows release-state.json instead (readReleaseState).
 */

export interface ReleaseAuditEvent {
  readonly type: "release-activated" | "release-rolled-back";
  readonly actor: string | null;
  readonly atWallMs: number;
  readonly detail: Record<string, unknown>;
}

export function insertEvent(db: Database.Database, event: ReleaseAuditEvent): void {
  db.prepare("INSERT INTO events (at_wall_ms, type, actor, detail) VALUES (?, ?, ?, ?)").run(
    event.atWallMs,
    event.type,
    event.actor,
    JSON.stringify(event.detail),
  );
}

/**
 * Appends the event to the store (a running gateway may be writing too: WAL lets both, and the busy
 * timeout waits out its transactions). Returns the problems: none when it is written.
 */
export function appendReleaseEvent(store: StoreFiles, event: ReleaseAuditEvent): string[] {
  let db: Database.Database | null = null;
  const problems: string[] = [];
  try {
    db = new Database(store.db, { fileMustExist: true });
    db.pragma("busy_timeout = 5000");
    db.pragma("synchronous = FULL");
    insertEvent(db, event);
  } catch (error) {
    problems.push(`the ${event.type} event is not in ${store.db}: ${(error as Error).message}`);
  } finally {
    db?.close();
  }
  // Root's connection may have left a -wal or -shm: the gateway's user must keep owning its store.
  handBackToOwner(store.dir);
  return problems;
}
