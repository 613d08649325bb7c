import { codeName, IndianaCode } from "../core/event-log/indiana.js";
import {
  availabilitySchema,
  eventSchema,
  hiResBatchSchema,
  parsePayload,
  type Status,
  statusSchema,
} from "../protocol/messages.js";
import { parseTopic, TOPIC_ROOT } from "../protocol/topics.js";
import type { CorridorModel } from "./corridor-model.js";
import { buildDiagram, type HiResRow } from "./diagram.js";
import type { AspectName, ConsoleCounters, DiagramView, IntersectionView, RecentEvent } from "./view.js";

/**
 * What the console knows about each intersection, bounded: the latest status and availability, the
 * latest aspects, a ring of recent event-log rows (by count and by age) and the recent events shown.
 * Every payload is validated with the wire's own schemas; a malformed, oversized or foreign message is
 * counted and dropped, never half-applied.
 */

export interface ConsoleStateLimits {
  /** Event-log rows kept per intersection (a cycle writes a few dozen). */
  readonly maxRowsPerIntersection: number;
  /** Rows older than this (behind the newest one) are let go. */
  readonly maxRowAgeMs: number;
  /** Recent events shown per intersection. */
  readonly maxRecentEvents: number;
  /** A payload larger than this is dropped unread. */
  readonly maxPayloadBytes: number;
}

export const DEFAULT_LIMITS: ConsoleStateLimits = {
  maxRowsPerIntersection: 20_000,
  maxRowAgeMs: 10 * 60_000,
  maxRecentEvents: 30,
  maxPayloadBytes: 64 * 1024,
};

/** How many cycles the time-space diagram shows. */
export const DIAGRAM_CYCLES = 3;
/** The cycle assumed before any plan is known. */
const DEFAULT_CYCLE_MS = 90_000;

/** Event-log codes that also go to an intersection's recent events (the rest are lamp changes). */
const NOTABLE_CODES = new Set<number>([
  IndianaCode.COORD_PATTERN_CHANGE,
  IndianaCode.CYCLE_LENGTH_CHANGE,
  IndianaCode.OFFSET_LENGTH_CHANGE,
  IndianaCode.UNIT_FLASH_STATUS_CHANGE,
  IndianaCode.POWER_FAILURE_DETECTED,
  IndianaCode.POWER_RESTORED,
]);

interface Site {
  status: Status | null;
  online: boolean | null;
  offlineReason: string | null;
  aspects: Record<string, AspectName> | null;
  aspectsAtMs: number | null;
  rows: HiResRow[];
  lastRowSeq: number;
  events: RecentEvent[];
  auditSeqs: Set<number>;
  /** The gateway's clock minus ours, from its newest `hires` message. */
  clockAheadMs: number | null;
}

type Counts = { -readonly [K in keyof ConsoleCounters]: ConsoleCounters[K] };

export class ConsoleState {
  private readonly sites = new Map<string, Site>();
  readonly counters: Counts = {
    malformed: 0,
    tooLarge: 0,
    foreign: 0,
    hiresDuplicates: 0,
    hiresDropped: 0,
    streamClients: 0,
    streamRefused: 0,
    streamSlowDropped: 0,
  };
  private readonly designs = new Map<string, DiagramView["design"]>();

  constructor(
    readonly model: CorridorModel,
    private readonly limits: ConsoleStateLimits = DEFAULT_LIMITS,
  ) {
    for (const site of model.sites)
      this.sites.set(site.id, {
        status: null,
        online: null,
        offlineReason: null,
        aspects: null,
        aspectsAtMs: null,
        rows: [],
        lastRowSeq: 0,
        events: [],
        auditSeqs: new Set(),
        clockAheadMs: null,
      });
  }

  /** The MQTT topic filters the console subscribes to (read only). */
  topicFilters(): Record<string, { qos: 0 | 1 }> {
    const base = `${TOPIC_ROOT}/${this.model.id}/+`;
    return {
      [`${base}/status`]: { qos: 1 },
      [`${base}/availability`]: { qos: 1 },
      [`${base}/events`]: { qos: 1 },
      [`${base}/hires`]: { qos: 0 },
    };
  }

  /**
   * Takes one message. Returns the intersection whose view changed, or null (dropped and counted, or
   * nothing to show: an empty retained payload).
   */
  ingest(topic: string, payload: Uint8Array, receivedAtMs: number): string | null {
    const parsed = parseTopic(topic);
    const site = parsed ? this.sites.get(parsed.intersection) : undefined;
    if (!parsed || parsed.corridor !== this.model.id || !site) {
      this.counters.foreign++;
      return null;
    }
    if (payload.length === 0) return null;
    if (payload.length > this.limits.maxPayloadBytes) {
      this.counters.tooLarge++;
      return null;
    }
    const id = parsed.intersection;
    const ours = (m: { corridor: string; intersection: string }) =>
      m.corridor === this.model.id && m.intersection === id;
    switch (parsed.kind) {
      case "status": {
        const status = parsePayload(statusSchema, payload);
        if (!status || !ours(status)) return this.malformed();
        site.status = status;
        return id;
      }
      case "availability": {
        const availability = parsePayload(availabilitySchema, payload);
        if (!availability) return this.malformed();
        site.online = availability.online;
        site.offlineReason = availability.online ? null : (availability.reason ?? null);
        return id;
      }
      case "events": {
        const event = parsePayload(eventSchema, payload);
        if (!event || !ours(event)) return this.malformed();
        if (site.auditSeqs.has(event.seq)) return null;
        const atMs = Date.parse(event.at);
        this.addRecent(site, {
          atMs: Number.isNaN(atMs) ? receivedAtMs : atMs,
          source: "audit",
          kind: event.type,
          text: auditText(event.type, event.actor, event.detail),
          seq: event.seq,
        });
        return id;
      }
      case "hires": {
        const batch = parsePayload(hiResBatchSchema, payload);
        if (!batch || !ours(batch)) return this.malformed();
        const publishedMs = Date.parse(batch.at);
        if (!Number.isNaN(publishedMs)) site.clockAheadMs = publishedMs - receivedAtMs;
        site.aspects = batch.aspects;
        site.aspectsAtMs = Number.isNaN(publishedMs) ? null : publishedMs;
        for (const row of batch.events) this.addRow(site, row);
        return id;
      }
      default:
        // reply and cmd topics are not subscribed to.
        this.counters.foreign++;
        return null;
    }
  }

  private malformed(): null {
    this.counters.malformed++;
    return null;
  }

  private addRow(site: Site, row: { seq: number; at: number; code: number; param: number }): void {
    const newest = site.rows.at(-1);
    if (row.seq <= site.lastRowSeq) {
      const oldest = site.rows[0];
      // Below every seq kept yet newer than every row: no redelivery but a numbering that starts over
      // (the gateway's store replaced). What is kept belongs to the old numbering: let it go (counted).
      const startedOver =
        oldest !== undefined && newest !== undefined && row.seq < oldest.seq && row.at > newest.atMs;
      if (!startedOver) {
        this.counters.hiresDuplicates++;
        return;
      }
      this.counters.hiresDropped += site.rows.length;
      site.rows = [];
    } else if (newest !== undefined && row.at < newest.atMs) {
      // The gateway's clock stepped back: the rows stamped after this one came from a clock that ran
      // ahead. They go (counted), so the rows stay in time order, as aging and the diagram read them.
      let keep = site.rows.length;
      while (keep > 0 && (site.rows[keep - 1] as HiResRow).atMs > row.at) keep--;
      this.counters.hiresDropped += site.rows.length - keep;
      site.rows.length = keep;
    }
    site.lastRowSeq = row.seq;
    site.rows.push({ seq: row.seq, atMs: row.at, code: row.code, param: row.param });
    if (site.rows.length > this.limits.maxRowsPerIntersection) {
      const over = site.rows.length - this.limits.maxRowsPerIntersection;
      site.rows.splice(0, over);
      this.counters.hiresDropped += over;
    }
    const oldest = row.at - this.limits.maxRowAgeMs;
    let aged = 0;
    while (aged < site.rows.length && (site.rows[aged] as HiResRow).atMs < oldest) aged++;
    if (aged > 0) site.rows.splice(0, aged);
    if (NOTABLE_CODES.has(row.code))
      this.addRecent(site, {
        atMs: row.at,
        source: "hires",
        kind: codeName(row.code),
        text: `${row.code} ${codeName(row.code)} (${row.param})`,
        seq: null,
      });
  }

  private addRecent(site: Site, event: RecentEvent & { seq: number | null }): void {
    const { seq, ...shown } = event;
    site.events.push(shown);
    site.events.sort((a, b) => a.atMs - b.atMs);
    if (seq !== null) site.auditSeqs.add(seq);
    while (site.events.length > this.limits.maxRecentEvents) site.events.shift();
    // The seqs remembered for de-duplication: as many as the events kept, newest.
    if (site.auditSeqs.size > 4 * this.limits.maxRecentEvents) {
      const keep = [...site.auditSeqs].sort((a, b) => a - b).slice(-2 * this.limits.maxRecentEvents);
      site.auditSeqs = new Set(keep);
    }
  }

  view(id: string): IntersectionView {
    const site = this.sites.get(id);
    const geometry = this.model.site(id);
    if (!site || !geometry) throw new Error(`no intersection ${id} in corridor ${this.model.id}`);
    const s = site.status;
    return {
      id,
      name: s?.name ?? geometry.name,
      positionM: geometry.positionM,
      groups: geometry.groups,
      online: site.online,
      offlineReason: site.offlineReason,
      status: s
        ? {
            mode: s.mode,
            plan: s.plan,
            fault: s.fault ? { kind: s.fault.kind, message: s.fault.message, at: s.fault.at } : null,
            lock: s.lock,
            lastTxn: s.lastTxn ? { id: s.lastTxn.id, outcome: s.lastTxn.outcome, at: s.lastTxn.at } : null,
            clock: s.clock ?? null,
            cycle: s.cycle
              ? { stage: s.cycle.stage, inStep: s.cycle.inStep, offsetErrorMs: s.cycle.offsetErrorMs }
              : null,
            at: s.at,
          }
        : null,
      aspects: site.aspects,
      aspectsAtMs: site.aspectsAtMs,
      events: site.events,
    };
  }

  views(): IntersectionView[] {
    return this.model.sites.map((s) => this.view(s.id));
  }

  /** How far the gateways' clocks run ahead of ours (the median over intersections; 0 before any message). */
  gatewayClockAheadMs(): number {
    const values = [...this.sites.values()]
      .map((s) => s.clockAheadMs)
      .filter((v): v is number => v !== null)
      .sort((a, b) => a - b);
    return values.length === 0 ? 0 : (values[Math.floor(values.length / 2)] as number);
  }

  /** The time-space diagram of the last DIAGRAM_CYCLES cycles up to now (our clock, mapped to the gateways'). */
  diagram(nowMs: number): DiagramView {
    const planIds = this.model.sites.map((s) => this.sites.get(s.id)?.status?.plan.id ?? null);
    const firstPlan = planIds.find((p) => p !== null) ?? null;
    const samePlan = firstPlan !== null && planIds.every((p) => p === firstPlan);
    const cycleMs =
      (firstPlan !== null
        ? this.model.intersectionPlan(this.model.sites[0]?.id ?? "", firstPlan)?.cycleMs
        : null) ?? DEFAULT_CYCLE_MS;
    return buildDiagram({
      sites: this.model.sites.map((site, i) => {
        const through = this.model.through(site.id, planIds[i] ?? null);
        return {
          id: site.id,
          positionM: site.positionM,
          throughGroup: through?.group ?? null,
          phase: through?.phase ?? null,
          rows: this.sites.get(site.id)?.rows ?? [],
        };
      }),
      speedMps: this.model.speedMps,
      cycleMs,
      cycles: DIAGRAM_CYCLES,
      toMs: nowMs + this.gatewayClockAheadMs(),
      maxWindowMs: this.limits.maxRowAgeMs,
      design: samePlan ? this.design(firstPlan) : null,
    });
  }

  private design(planId: string): DiagramView["design"] {
    if (!this.designs.has(planId)) {
      if (this.designs.size >= 32) this.designs.clear();
      this.designs.set(planId, this.model.designBands(planId));
    }
    return this.designs.get(planId) ?? null;
  }
}

/** One line for an audit event: its type, who, and the detail's plain fields. */
export function auditText(type: string, actor: string | null, detail: Record<string, unknown>): string {
  const fields = Object.entries(detail)
    .filter(([, v]) => typeof v === "string" || typeof v === "number" || typeof v === "boolean")
    .slice(0, 4)
    .map(([k, v]) => `${k}=${String(v)}`);
  const text = `${type}${actor ? ` by ${actor}` : ""}${fields.length > 0 ? ` ${fields.join(" ")}` : ""}`;
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}
