import {
  type HiResObservation,
  type HiResRecorderState,
  INITIAL_RECORDER,
  recordHiRes,
  startRow,
  stopRow,
} from "../core/event-log/hires-recorder.js";
import { FlashStatus, type HiResEvent } from "../core/event-log/indiana.js";
import { signalRows } from "../core/event-log/signal-rows.js";
import type { Aspect } from "../core/model.js";
import { type HiResBatch, MAX_HIRES_BATCH_EVENTS } from "../protocol/messages.js";
import { PROTOCOL_VERSION } from "../protocol/topics.js";
import type { StoredHiResEvent } from "../store/hires-records.js";
import type { GatewayParts } from "./gateway-parts.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/** Rows written to the store together: one unsynced transaction every few seconds keeps the SD card's wear low. */
export const HIRES_FLUSH_MS = 5000;
/** A batch this large is written at once, whatever the time. */
export const HIRES_FLUSH_ROWS = 256;
/**
 * Rows held in memory while the store refuses them (a full disk): about an hour of a busy
 * intersection. Past it the oldest go, counted.
 */
export const MAX_HIRES_PENDING = 20_000;
/** Sequence numbers reserved on disk at a time (one forced write per this many rows). */
export const HIRES_SEQ_BLOCK = 1000;

/**
 * The event log's interpreter in a gateway: runs the pure recorder (core/event-log) on every output
 * the controller writes, numbers the rows, publishes them live after the tick (QoS 0: the store is
 * the record, a collector fills a gap from it), and writes them to the store in batches.
 */
export class HiResLog {
  private recorder: HiResRecorderState = INITIAL_RECORDER;
  private pending: StoredHiResEvent[] = [];
  private live: StoredHiResEvent[] = [];
  private aspects: readonly Aspect[] = [];
  private nextSeq = 0;
  private lastReserved = -1;
  private timer: NodeJS.Timeout | null = null;
  readonly counters = { recorded: 0, dropped: 0, published: 0, flushFailures: 0, pruned: 0 };

  constructor(
    private readonly parts: GatewayParts,
    /** Whether the time-of-day schedule put the unit in flash (else an operator did). */
    private readonly scheduledFlash: () => boolean,
    private readonly device: string,
  ) {
    parts.bus.on("outputs", ({ aspects }) => this.observe(aspects));
    parts.bus.on("signal", (event) => {
      const rows = signalRows(parts.runner.intersection, event, parts.clock.now().wallMs);
      if (rows.length > 0) this.add(rows);
    });
    parts.bus.on("tick", () => this.publishLive());
  }

  start(): void {
    this.add([startRow(this.parts.clock.now().wallMs)]);
    this.timer = setInterval(() => this.flush(), HIRES_FLUSH_MS);
    this.timer.unref();
  }

  /** The orderly stop's row, then every row still in memory to the store. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.add([stopRow(this.parts.clock.now().wallMs)]);
    this.publishLive();
    this.flush();
  }

  private observe(aspects: readonly Aspect[]): void {
    const { runner, clock } = this.parts;
    const controller = runner.controller;
    const seq = controller.seq;
    const observation: HiResObservation = {
      aspects,
      intervals: seq.groups.map((g) => g.interval),
      flash: flashStatus(controller.mon.latch !== null, seq.mode, this.scheduledFlash()),
      plan: seq.plan,
      sequencing: controller.mon.latch === null && seq.mode === "running",
      cycles: seq.cycles,
    };
    const step = recordHiRes(runner.intersection, this.recorder, observation, clock.now().wallMs);
    this.recorder = step.state;
    this.aspects = aspects;
    if (step.events.length > 0) this.add(step.events);
  }

  private add(events: readonly HiResEvent[]): void {
    for (const event of events) {
      const row = { ...event, seq: this.takeSeq() };
      this.pending.push(row);
      this.live.push(row);
      this.counters.recorded++;
    }
    this.parts.metrics.hiResEvents.inc(events.length);
    if (this.pending.length > MAX_HIRES_PENDING) {
      const excess = this.pending.length - MAX_HIRES_PENDING;
      this.pending.splice(0, excess);
      this.counters.dropped += excess;
      this.parts.metrics.hiResDropped.inc(excess);
    }
    if (this.live.length > MAX_HIRES_BATCH_EVENTS * 4)
      this.live.splice(0, this.live.length - MAX_HIRES_BATCH_EVENTS * 4);
    if (this.pending.length >= HIRES_FLUSH_ROWS) this.flush();
  }

  /** The next sequence number; a new block is reserved on disk first (if that fails, numbering goes on, said). */
  private takeSeq(): number {
    if (this.nextSeq > this.lastReserved) {
      const block = degradeOnStoreFailure(
        this.parts.log,
        "event log numbers not reserved: after a crash some may be given again",
        () => this.parts.store.reserveHiResSeqs(HIRES_SEQ_BLOCK),
        null,
      );
      if (block) {
        this.nextSeq = Math.max(this.nextSeq, block.first);
        this.lastReserved = block.last;
      } else {
        this.nextSeq = Math.max(this.nextSeq, 1);
        this.lastReserved = this.nextSeq + HIRES_SEQ_BLOCK - 1;
      }
    }
    return this.nextSeq++;
  }

  /** Writes what is in memory in one transaction; on failure it stays (bounded) for the next try. */
  flush(): void {
    if (this.pending.length === 0) return;
    const rows = this.pending;
    const pruned = degradeOnStoreFailure(
      this.parts.log,
      `event log: ${rows.length} rows not written yet (kept in memory, at most ${MAX_HIRES_PENDING})`,
      () => this.parts.store.appendHiRes(rows),
      null,
    );
    if (pruned === null) {
      this.counters.flushFailures++;
      return;
    }
    this.pending = [];
    this.counters.pruned += pruned;
    if (pruned > 0) this.parts.metrics.hiResPruned.inc(pruned);
  }

  private publishLive(): void {
    const { link, topics, ids, clock } = this.parts;
    if (this.live.length === 0) return;
    const rows = this.live;
    this.live = [];
    if (!link?.connected) return;
    for (let i = 0; i < rows.length; i += MAX_HIRES_BATCH_EVENTS) {
      const batch: HiResBatch = {
        v: PROTOCOL_VERSION,
        corridor: ids.corridor,
        intersection: ids.intersection,
        device: this.device,
        aspects: Object.fromEntries(
          this.parts.runner.intersection.groups.map((g, k) => [g.id, this.aspects[k] ?? "dark"]),
        ),
        events: rows
          .slice(i, i + MAX_HIRES_BATCH_EVENTS)
          .map((r) => ({ seq: r.seq, at: r.atMs, code: r.code, param: r.param })),
        at: new Date(clock.now().wallMs).toISOString(),
      };
      this.counters.published += batch.events.length;
      link.publish(topics.hires, JSON.stringify(batch), { qos: 0 }).catch(() => {
        // QoS 0 and live only: the store holds the row; a collector fills the gap by seq.
      });
    }
  }
}

/** Why the unit flashes, as code 173 counts it. */
export function flashStatus(latched: boolean, mode: string, scheduled: boolean): FlashStatus {
  if (latched) return FlashStatus.FAULT_MONITOR;
  if (mode === "startup-flash") return FlashStatus.STARTUP;
  if (mode === "flash") return scheduled ? FlashStatus.AUTOMATIC : FlashStatus.LOCAL_MANUAL;
  return FlashStatus.NOT_FLASH;
}
