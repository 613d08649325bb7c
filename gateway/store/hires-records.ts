import type { HiResEvent } from "../core/event-log/indiana.js";
import { invariant } from "../core/invariant.js";
import type { SqlAccess } from "./txn-records.js";

/**
 * The high-resolution event log in the store (core/event-log): rows written in batches, numbered by
 * a sequence that a restart never hands out twice, read by time, pruned oldest first (counted).
 */

export interface StoredHiResEvent extends HiResEvent {
  readonly seq: number;
}

export interface HiResQuery {
  /** Rows at or after this instant (wall ms); null: from the oldest. */
  readonly sinceWallMs: number | null;
  /** Rows before this instant; null: to the newest. */
  readonly untilWallMs: number | null;
  /** Rows after this sequence number (a reader's resume point); 0: all. */
  readonly afterSeq: number;
  readonly limit: number;
}

/** The most rows one read returns: a page; a caller pages on by `afterSeq`. */
export const MAX_HIRES_PAGE = 5000;

const RESERVED_KEY = "hires_seq_reserved";

/**
 * Takes the next `count` sequence numbers for sure: the high-water mark is written (in the caller's
 * forced transaction) before any of them is handed out, so that rows published live and lost with a
 * crash before their batch reached the disk are never numbered again.
 */
export function reserveHiResSeqs(q: SqlAccess, count: number): { first: number; last: number } {
  invariant(Number.isSafeInteger(count) && count > 0, () => `reserving ${count} sequence numbers`);
  const reserved = q.statement("SELECT value FROM meta WHERE key = ?").get(RESERVED_KEY) as
    { value: string } | undefined;
  const { newest } = q.statement("SELECT max(seq) AS newest FROM hires_events").get() as {
    newest: number | null;
  };
  const from = Math.max(reserved ? Number(reserved.value) : 0, newest ?? 0);
  const last = from + count;
  q.statement(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  ).run(RESERVED_KEY, String(last));
  return { first: from + 1, last };
}

export function appendHiRes(q: SqlAccess, rows: readonly StoredHiResEvent[]): void {
  const insert = q.statement("INSERT INTO hires_events (seq, at_ms, code, param) VALUES (?, ?, ?, ?)");
  for (const row of rows) insert.run(row.seq, row.atMs, row.code, row.param);
}

/**
 * Keeps at most `maxRows` rows: every row more than `maxRows` sequence numbers before the newest goes
 * (counted). Cheap enough for every batch: two lookups on the rowid, no count.
 */
export function boundHiRes(q: SqlAccess, maxRows: number): number {
  const { newest, oldest } = q
    .statement("SELECT max(seq) AS newest, min(seq) AS oldest FROM hires_events")
    .get() as { newest: number | null; oldest: number | null };
  if (newest === null || oldest === null || oldest > newest - maxRows) return 0;
  const result = q.statement("DELETE FROM hires_events WHERE seq <= ?").run(newest - maxRows);
  if (result.changes > 0) q.addToCounter("hires_pruned", result.changes);
  return result.changes;
}

/**
 * A window with fewer rows than this is read through the time index and sorted (cheap: few rows); a
 * wider one along the primary key, already in order. Read through the index, a wide window is a sort
 * of the whole table for every page: ~90 ms at 1.5 million rows, on the lamp loop's event loop.
 */
const NARROW_WINDOW_ROWS = 20_000;

/** A narrow window's page: through the time index, its few rows sorted. */
export const PAGE_BY_TIME =
  "SELECT seq, at_ms, code, param FROM hires_events WHERE seq > ? AND at_ms >= ? AND at_ms < ? ORDER BY seq LIMIT ?";
/** A wide window's page: `+at_ms` keeps SQLite off the time index, so rows come along the primary key, in order. */
export const PAGE_BY_SEQ =
  "SELECT seq, at_ms, code, param FROM hires_events WHERE seq > ? AND +at_ms >= ? AND +at_ms < ? ORDER BY seq LIMIT ?";

/** Where the page after these rows starts: the last row's seq when the page is full, null at the end. */
export function nextAfter(rows: readonly StoredHiResEvent[], limit: number): number | null {
  const last = rows.at(-1);
  return rows.length === limit && last ? last.seq : null;
}

export function readHiRes(q: SqlAccess, query: HiResQuery): StoredHiResEvent[] {
  invariant(query.limit >= 1 && query.limit <= MAX_HIRES_PAGE, () => `hi-res page of ${query.limit} rows`);
  const since = query.sinceWallMs ?? Number.MIN_SAFE_INTEGER;
  const until = query.untilWallMs ?? Number.MAX_SAFE_INTEGER;
  const { inWindow } = q
    .statement(
      "SELECT count(*) AS inWindow FROM (SELECT 1 FROM hires_events WHERE at_ms >= ? AND at_ms < ? LIMIT ?)",
    )
    .get(since, until, NARROW_WINDOW_ROWS) as { inWindow: number };
  const sql = inWindow < NARROW_WINDOW_ROWS ? PAGE_BY_TIME : PAGE_BY_SEQ;
  const rows = q.statement(sql).all(query.afterSeq, since, until, query.limit) as {
    seq: number;
    at_ms: number;
    code: number;
    param: number;
  }[];
  return rows.map((row) => ({ seq: row.seq, atMs: row.at_ms, code: row.code, param: row.param }));
}
