import { PROTOCOL_VERSION, type IntersectionTopics } from "../protocol/topics.js";
import type { Clock } from "../shell/clock.js";
import type { Logger } from "../shell/log.js";
import type { GatewayMetrics } from "../shell/metrics.js";
import type { GatewayStore } from "../store/store.js";
import { degradeOnStoreFailure } from "./store-guard.js";

export interface AuditEntry {
  readonly type: string;
  readonly actor: string | null;
  readonly detail: Record<string, unknown>;
  readonly atWallMs: number;
}

/** Deferred audit entries written at once past this many (a burst of signals): bounded memory. */
const MAX_DEFERRED_AUDIT = 256;

/**
 * Informational audit entries are written without their own fsync; at most this long later they are
 * forced to disk (if no forced write of the protocol did it first) and only then published.
 */
export const AUDIT_SYNC_DELAY_MS = 500;

/**
 * The gateway's audit trail: every entry is appended to the store's events and its outbox (published
 * as `…/events`). Two speeds: `now` (forced, before an operator's action takes effect) and `soon`
 * (informational, written together at the end of the turn without an fsync of its own).
 */
export class AuditTrail {
  /** Entries waiting for the end of this turn (`soon`). */
  private readonly deferred: AuditEntry[] = [];
  private syncTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly store: GatewayStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: GatewayMetrics,
    private readonly where: {
      readonly corridor: string;
      readonly intersection: string;
      readonly topics: IntersectionTopics;
    },
    /** Tells the outbox there is something to send. */
    private readonly kick: () => void,
  ) {}

  /** Appends now, forced (after what waits in the deferred queue, to keep the order). */
  now(type: string, actor: string | null, detail: Record<string, unknown>): void {
    this.flush();
    degradeOnStoreFailure(
      this.log,
      `audit entry ${type} not written`,
      () => this.append({ type, actor, detail, atWallMs: this.clock.now().wallMs }),
      undefined,
    );
    this.kick();
  }

  /**
   * Appends inside the caller's store transaction: no catching here, so that a failure rolls the whole
   * transaction back (a plan in force and its audit entry: both or neither). Call `committed` after.
   */
  within(type: string, actor: string | null, detail: Record<string, unknown>): void {
    this.flush();
    this.append({ type, actor, detail, atWallMs: this.clock.now().wallMs });
  }

  /** After the caller's transaction that used `within` committed: the outbox may send its entries. */
  committed(): void {
    this.kick();
  }

  /**
   * Informational entries (the corridor protocol's and the controller's own state is durable in its
   * tables) are written together once this turn's messages are out: one transaction, off the path
   * between a protocol message and its answer.
   */
  soon(type: string, actor: string | null, detail: Record<string, unknown>): void {
    if (this.deferred.length >= MAX_DEFERRED_AUDIT) this.flush();
    this.deferred.push({ type, actor, detail, atWallMs: this.clock.now().wallMs });
    if (this.deferred.length === 1) setImmediate(() => this.flush());
  }

  flush(): void {
    const batch = this.deferred.splice(0);
    if (batch.length === 0) return;
    // Not forced: the protocol's and the controller's own records are, and these follow them. The
    // outbox holds them back until they are on disk (see GatewayStore.lazily).
    degradeOnStoreFailure(
      this.log,
      `${batch.length} informational audit entries not written`,
      () => this.store.lazily(() => batch.forEach((entry) => this.append(entry))),
      undefined,
    );
    this.kick();
    if (this.store.hasUnsyncedOutbox && !this.syncTimer && !this.closed)
      this.syncTimer = setTimeout(() => {
        this.syncTimer = null;
        degradeOnStoreFailure(
          this.log,
          "lazy audit entries not synced",
          () => this.store.syncLazyWrites(),
          undefined,
        );
        this.kick();
      }, AUDIT_SYNC_DELAY_MS);
  }

  /** No more timers; what waits is written now. */
  close(): void {
    this.closed = true;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    this.flush();
  }

  private append(entry: AuditEntry): void {
    const { type, actor, detail, atWallMs } = entry;
    if (type === "txn-committed") this.metrics.transactions.inc({ outcome: "committed" });
    if (type === "txn-aborted") this.metrics.transactions.inc({ outcome: "aborted" });
    const { corridor, intersection, topics } = this.where;
    this.store.appendEvent({ atWallMs, type, actor, detail }, (seq) => ({
      topic: topics.events,
      payload: JSON.stringify({
        v: PROTOCOL_VERSION,
        corridor,
        intersection,
        seq,
        at: new Date(atWallMs).toISOString(),
        type,
        actor,
        detail,
      }),
    }));
  }
}
