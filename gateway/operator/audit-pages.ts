import { z } from "zod";
import {
  type AuditEvent,
  type AuditPage,
  type AuditPageRequest,
  MAX_AUDIT_PAGE_EVENTS,
} from "../core/audit-page.js";
import { type OperatorClient, OperatorError } from "./operator-client.js";

/** `greenwave audit --limit` at most: 10,000 events print in well under a second and fit any terminal scrollback. */
export const MAX_AUDIT_LIMIT = 10_000;
/**
 * Pages one `greenwave audit` asks for at most. A full trail (100,000 events) is 20 scan windows;
 * 10,000 events are about 40 byte-bounded pages: far below this, and within the commands' rate-limit
 * burst (64) over MQTT.
 */
const MAX_PAGES = 200;

/** Where pages come from: the store at the cabinet, or a gateway over MQTT. */
export type FetchAuditPage = (request: AuditPageRequest) => Promise<AuditPage>;

export interface CollectedAudit {
  /** Oldest first: the newest `limit` events stamped at or after `since`. */
  readonly events: AuditEvent[];
  /** Older events matched too but are not shown (raise --limit, or give a later --since). */
  readonly older: boolean;
}

/** The newest `limit` events (since an instant), newest page first; one more than asked says whether older ones remain. */
export async function collectAudit(
  fetch: FetchAuditPage,
  query: { readonly sinceWallMs: number | null; readonly limit: number },
): Promise<CollectedAudit> {
  const wanted = query.limit + 1;
  const events: AuditEvent[] = [];
  let beforeSeq: number | null = null;
  let pages = 0;
  while (events.length < wanted) {
    if (pages++ >= MAX_PAGES) return { events: events.slice(0, query.limit).reverse(), older: true };
    const page = await fetch({
      beforeSeq,
      sinceWallMs: query.sinceWallMs,
      limit: Math.min(wanted - events.length, MAX_AUDIT_PAGE_EVENTS),
    });
    events.push(...page.events);
    if (page.next === null) break;
    // Each page must move down the trail: a reply that does not would make this loop its own.
    if (beforeSeq !== null && page.next >= beforeSeq)
      throw new OperatorError(
        `the audit trail's pages do not advance (next ${page.next} after ${beforeSeq})`,
      );
    beforeSeq = page.next;
  }
  return { events: events.slice(0, query.limit).reverse(), older: events.length > query.limit };
}

const auditPageSchema = z.object({
  events: z.array(
    z.object({
      seq: z.number().int().positive(),
      at: z.string(),
      type: z.string(),
      actor: z.string().nullable(),
      detail: z.record(z.string(), z.unknown()),
    }),
  ),
  next: z.number().int().nullable(),
});

/** Pages from a running gateway: its read-only `audit` command (docs/protocol.md), one reply per page. */
export function mqttAuditPages(
  client: OperatorClient,
  where: { readonly corridor: string; readonly intersection: string; readonly by: string },
): FetchAuditPage {
  return async (request) => {
    const reply = await client.command(where.corridor, where.intersection, "audit", {
      by: where.by,
      ...request,
    });
    if (!reply.ok) {
      const hint =
        reply.error?.code === "unknown-command"
          ? " (its gateway is older than the audit command: read its trail at the cabinet with greenwave audit --data-dir)"
          : "";
      throw new OperatorError(
        `${where.intersection} refused the audit query: ${reply.error?.message ?? "no reason given"}${hint}`,
      );
    }
    const page = auditPageSchema.safeParse(reply.result);
    if (!page.success)
      throw new OperatorError(
        `${where.intersection} answered the audit query with a page this greenwave cannot read`,
      );
    return page.data;
  };
}
