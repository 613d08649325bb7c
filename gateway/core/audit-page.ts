/**
 * A page of a gateway's audit trail, as the store reads it and the `audit` command carries it: the
 * shapes and bounds both sides (store/audit-page.ts, protocol/messages.ts, operator/audit-pages.ts)
 * agree on. Every page is bounded three ways, so that no request can make a gateway block its lamp
 * loop or send an oversized reply: the rows it scans, the events it returns, and their bytes.
 */

/** Events in one page at most. */
export const MAX_AUDIT_PAGE_EVENTS = 500;
/** The events of one page serialise to at most this (one event alone may exceed it): far below the broker's 256 KiB. */
export const AUDIT_PAGE_BYTES = 64 * 1024;
/** Sequence numbers one page scans at most: a rowid range, a millisecond or two even on a slow SD card. */
export const AUDIT_SCAN_ROWS = 5000;

export interface AuditPageRequest {
  /** Only events before this sequence number; null: from the newest. */
  readonly beforeSeq: number | null;
  /** Only events stamped at or after this wall-clock instant (ms); null: all. */
  readonly sinceWallMs: number | null;
  /** 1 to MAX_AUDIT_PAGE_EVENTS. */
  readonly limit: number;
}

/** An event as `greenwave audit --json` prints it and the `audit` reply carries it (as on `…/events`, without the envelope). */
export interface AuditEvent {
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  readonly actor: string | null;
  readonly detail: Record<string, unknown>;
}

export interface AuditPage {
  /** Newest first. */
  readonly events: AuditEvent[];
  /** Ask again with this as `beforeSeq` for older events; null: none are left. */
  readonly next: number | null;
}
