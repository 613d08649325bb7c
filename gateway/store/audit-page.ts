import type Database from "better-sqlite3";
import {
  AUDIT_PAGE_BYTES,
  AUDIT_SCAN_ROWS,
  type AuditEvent,
  type AuditPage,
  type AuditPageRequest,
  MAX_AUDIT_PAGE_EVENTS,
} from "../core/audit-page.js";

export type { AuditEvent, AuditPage, AuditPageRequest } from "../core/audit-page.js";

/**
 * Pages of a gateway's audit trail, newest first, for `greenwave audit`: read from the store at the
 * cabinet (store-reader.ts), or by the gateway itself for the `audit` command over MQTT. Bounded as
 * core/audit-page.ts says: a window of sequence numbers found by rowid, a count, and bytes.
 */

interface EventRow {
  seq: number;
  at_wall_ms: number;
  type: string;
  actor: string | null;
  detail: string;
}

/** One page (see the module comment); `prepare` compiles (or finds) a statement of the store's connection. */
export function readAuditPage(
  prepare: (sql: string) => Database.Statement,
  request: AuditPageRequest,
): AuditPage {
  const limit = Math.min(Math.max(1, Math.trunc(request.limit)), MAX_AUDIT_PAGE_EVENTS);
  const { lo, hi } = prepare("SELECT min(seq) AS lo, max(seq) AS hi FROM events").get() as {
    lo: number | null;
    hi: number | null;
  };
  if (lo === null || hi === null) return { events: [], next: null };
  const top = Math.min(request.beforeSeq ?? hi + 1, hi + 1);
  const floor = Math.max(lo, top - AUDIT_SCAN_ROWS);
  if (top <= floor) return { events: [], next: null };
  const rows = prepare(
    "SELECT seq, at_wall_ms, type, actor, detail FROM events WHERE seq < ? AND seq >= ? AND at_wall_ms >= ? ORDER BY seq DESC LIMIT ?",
  ).all(top, floor, request.sinceWallMs ?? Number.MIN_SAFE_INTEGER, limit) as EventRow[];
  const events: AuditEvent[] = [];
  let bytes = 0;
  for (const row of rows) {
    const event = toAuditEvent(row);
    bytes += Buffer.byteLength(JSON.stringify(event));
    if (events.length > 0 && bytes > AUDIT_PAGE_BYTES) break;
    events.push(event);
  }
  const last = events.at(-1);
  // Cut short (by the count or the bytes): older matches may remain in this window, so go on below the last one.
  if (last && (events.length < rows.length || rows.length === limit)) return { events, next: last.seq };
  return { events, next: floor > lo ? floor : null };
}

function toAuditEvent(row: EventRow): AuditEvent {
  return {
    seq: row.seq,
    at: new Date(row.at_wall_ms).toISOString(),
    type: row.type,
    actor: row.actor,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  };
}
