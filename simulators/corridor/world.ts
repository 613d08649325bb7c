import { createHash } from "node:crypto";
import { cancelKey, cancelTarget } from "../../gateway/core/corridor/plan-cancel.js";
import { controllerMode } from "../../gateway/core/controller.js";
import { DEFAULT_COORDINATOR_CONFIG } from "../../gateway/core/corridor/coordinator.js";
import { nextCommonBoundary } from "../../gateway/core/corridor/boundary.js";
import { INQUIRY_MAX_MS, MAX_TOMBSTONES } from "../../gateway/core/corridor/participant.js";
import { DEFAULT_PREPARE_TIMING_RULES } from "../../gateway/core/corridor/prepare-check.js";
import { scheduleBundleDigest } from "../../gateway/config/schedule-bundle.js";
import { InvariantViolation } from "../../gateway/core/invariant.js";
import type { PlanRef } from "../../gateway/core/corridor/participant.js";
import { nextChange, type Schedule } from "../../gateway/core/schedule/calendar.js";
import { isScheduleKey, scheduleKey } from "../../gateway/core/schedule/committed-change.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import { type CorridorView, InvariantChecker, type InvariantName, SimulationViolation } from "./checker.js";
import { loadSimCorridor, type SimCorridor } from "./corridor-data.js";
import { EventQueue } from "./event-queue.js";
import { LocalClock } from "./local-clock.js";
import type { Mutation } from "./mutations.js";
import { describeEnvelope, type NetworkFaults, SimNetwork, type SimEnvelope } from "./network.js";
import { SeededRandom } from "./random.js";
import { SimCoordinator } from "./sim-coordinator.js";
import { CORRIDOR_SENDER_LIMITS, SCHEDULE_TICK_EVERY, SimGateway } from "./sim-gateway.js";
import { MachineInvariantBroken } from "./sim-participant-ports.js";
import { chooseRunStart, randomScheduleFile, SIM_ZONES } from "./sim-schedules.js";

export interface SimulationOptions {
  readonly seed: number;
  readonly corridorFile?: string;
  /** Simulated time with faults and plan pushes, then with neither (healing). */
  readonly faultMs?: number;
  readonly settleMs?: number;
  readonly mutation?: Mutation | null;
  /** Time-of-day schedules in this run; by default the seed decides (most runs have them). */
  readonly schedules?: boolean;
  /** The corridor's time zone (null: the corridor file's fixed offset); by default the seed picks one. */
  readonly timeZone?: string | null;
  /** True wall time at the start; by default the seed picks one (sometimes near a DST transition). */
  readonly startWallMs?: number;
  /** How many of the last trace lines a result keeps. */
  readonly traceLines?: number;
}

interface Flood {
  readonly no: number;
  readonly from: string;
  readonly to: string;
  readonly kind: "mixed" | "inquiries" | "bystander";
  readonly asked: readonly SimEnvelope[];
}

/**
 * Made-up transaction ids per "mixed" flood, whose garbage decisions must never contradict each other
 * (an id said committed is never said aborted); the other floods draw inquiries from a million ids.
 */
const FLOOD_GARBAGE_IDS = 16;

export interface SimulationStats {
  pushes: number;
  committed: number;
  aborted: number;
  gatewayCrashes: number;
  coordinatorCrashes: number;
  brokerRestarts: number;
  partitions: number;
  pauses: number;
  messages: number;
  messagesLost: number;
  /** Clean stops that reached all-red and exited (a crash may cut one short: not counted). */
  cleanStops: number;
  /** The longest of them, on the gateway's own clock. */
  longestStopMs: number;
  floods: number;
  /** Messages the floods sent (not counted in `messages`). */
  floodMessages: number;
  /** Forgeries the Byzantine member sent or retained (decisions, answers, records, PREPAREs with made-up tokens). */
  forgeries: number;
  /** Cancels pushed (`plan cancel`, counted in `pushes` too), and how many committed. */
  cancels: number;
  cancelsCommitted: number;
  /** Messages the gateways' per-sender rate limit dropped (the floods' and any other). */
  messagesDropped: number;
  /** Schedule pushes (counted in `pushes` too), and how many committed. */
  schedulePushes: number;
  schedulesCommitted: number;
  /** In-step cycles of intersections governed by a schedule that the schedule invariant checked. */
  scheduleCycleChecks: number;
  /** Scheduled changes entered from their common boundary, as the schedule invariant checked. */
  scheduledEntries: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly violation: { readonly invariant: InvariantName; readonly message: string } | null;
  readonly trace: readonly string[];
  readonly stats: SimulationStats;
  readonly simulatedMs: number;
  /** A digest of the whole trace: equal for equal seeds (replay is exact). */
  readonly traceDigest: string;
}

const TICK_MS = 100;
const MAX_TICK_JITTER_MS = 40;
const COORDINATOR_TICK_MS = 50;
const TRACE_RING = 400;
const SIM_LEASE_TTLS_MS = [1_500, 3_000, 15_000] as const;
const MAX_SIM_LEASE_TTL_MS = Math.max(...SIM_LEASE_TTLS_MS);
/** A flood's messages reach the broker in slices this long (one event each, not one per message). */
const FLOOD_SLICE_MS = 10;
/** Real messages per (sender, addressee) a flood may replay. */
const RECENT_SENT = 16;

/**
 * How long after healing every transaction must have ended and every lock be free: a push begun just
 * before may still spend every lease attempt (request timeout + back-off each) and the vote timeout;
 * a participant in doubt asks again within the inquiry back-off's cap; a lease of a crashed
 * coordinator runs out within the longest TTL; plus 10 s of delivery and ticks.
 */
export function livenessBoundMs(config = DEFAULT_COORDINATOR_CONFIG): number {
  const acquiring = config.maxAcquireAttempts * (config.requestTimeoutMs + config.backoff.maxMs);
  return acquiring + config.voteTimeoutMs + INQUIRY_MAX_MS + MAX_SIM_LEASE_TTL_MS + 10_000;
}

/**
 * One deterministic run of a corridor: the real protocol and signal machines of every gateway and of
 * several coordinators, on a virtual clock, with the faults the seed chooses. A pure function of its
 * options: no real timers, sockets or clock reads.
 */
export function simulate(options: SimulationOptions): SimulationResult {
  return new World(options).run();
}

class World {
  private t = 0;
  private readonly queue = new EventQueue();
  private readonly random: SeededRandom;
  private readonly corridor: SimCorridor;
  private readonly checker: InvariantChecker;
  private readonly network: SimNetwork;
  private readonly gateways = new Map<string, SimGateway>();
  private readonly coordinators = new Map<string, SimCoordinator>();
  private readonly ring: string[] = [];
  private traceHash = 0x811c9dc5;
  private healed = false;
  private readonly rejectedParts = new Map<string, { intersection: string; reason: string }>();
  private readonly stats: SimulationStats = {
    pushes: 0,
    committed: 0,
    aborted: 0,
    gatewayCrashes: 0,
    coordinatorCrashes: 0,
    brokerRestarts: 0,
    partitions: 0,
    pauses: 0,
    messages: 0,
    messagesLost: 0,
    cleanStops: 0,
    longestStopMs: 0,
    floods: 0,
    floodMessages: 0,
    forgeries: 0,
    cancels: 0,
    cancelsCommitted: 0,
    messagesDropped: 0,
    schedulePushes: 0,
    schedulesCommitted: 0,
    scheduleCycleChecks: 0,
    scheduledEntries: 0,
  };
  /** The corridor's time zone here (null: the file's fixed offset), and whether schedules are pushed. */
  private readonly zone: string | null;
  private readonly schedulesOn: boolean;
  /** True wall time at the run's start (every party's clock is off it by its own skew). */
  private readonly wallAtZero: number;
  private readonly scheduleVersions = new Map<string, number>();
  /** Flood messages that never reached their target (broker down, an end cut off, the target down). */
  private floodLost = 0;
  /** A flood message is being handled (the buggify crash points stay quiet). */
  private handlingFlood = false;
  /** The last real messages each party sent to each other one, which a flood replays. */
  private readonly recentlySent = new Map<string, SimEnvelope[]>();
  /**
   * The Byzantine member's own source of randomness, apart from the run's: its forgeries change what
   * the gateways do, but not the faults and pushes the seed draws.
   */
  private readonly forgeRandom: SeededRandom;
  /** The last decision signatures seen on the wire, which the Byzantine member replays. */
  private readonly signaturesSeen: string[] = [];
  private readonly faultMs: number;
  /** How often a party crashes at a critical point of the protocol (FoundationDB's "buggify"). */
  private readonly crashPointRate: number;
  /** Parties stalled (a GC pause, a suspended laptop) until this true time: what reaches them waits. */
  private readonly pausedUntil = new Map<string, number>();
  private readonly settleMs: number;

  constructor(private readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    // Seeded from a digest of the seed: nearby seeds' generators start almost alike (their first draws
    // agree), which would make the Byzantine member the same in every run.
    this.forgeRandom = new SeededRandom(
      createHash("sha256").update(`byzantine member ${options.seed}`).digest().readInt32LE(0),
    );
    const r = this.random;
    // Most runs in a zone with daylight-saving time (a schedule runs in the corridor's zone), some at
    // the corridor file's fixed offset.
    const zone = r.chance(0.85) ? r.pick(SIM_ZONES) : null;
    this.zone = options.timeZone === undefined ? zone : options.timeZone;
    const schedulesOn = r.chance(0.75);
    this.schedulesOn = options.schedules ?? schedulesOn;
    this.corridor = loadSimCorridor(options.corridorFile ?? "config/corridor.yaml", this.zone);
    this.faultMs = options.faultMs ?? 240_000;
    this.settleMs = options.settleMs ?? 240_000;
    this.crashPointRate = r.pick([0, 0.01, 0.05, 0.15]);
    const maxStages = Math.max(
      ...[...this.corridor.plans.values()].flatMap((p) => [...p.parts.values()].map((x) => x.stages.length)),
    );
    this.checker = new InvariantChecker(
      TICK_MS + MAX_TICK_JITTER_MS,
      maxStages,
      SCHEDULE_TICK_EVERY * (TICK_MS + MAX_TICK_JITTER_MS),
    );
    const faults: NetworkFaults = {
      lossRate: r.pick([0, 0.01, 0.03, 0.08]),
      duplicateRate: r.pick([0, 0.02, 0.05]),
      longDelayRate: r.pick([0, 0.005, 0.02]),
      minLatencyMs: r.int(0, 3),
      maxLatencyMs: r.int(4, 60),
    };
    this.network = new SimNetwork(
      this.queue,
      r,
      faults,
      () => this.t,
      (e) => this.deliver(e),
      (line) => this.trace(line),
    );
    // Wall clocks start on any day of the year at any time (the daily sync point may fall inside the
    // run), or a few minutes before a daylight-saving transition or a sync point on such a day.
    const start = chooseRunStart(r, this.zone, this.corridor.timeReference);
    const wallAtZero = options.startWallMs ?? start;
    this.wallAtZero = wallAtZero;
    const skewed = r.chance(0.15) ? r.pick(this.corridor.ids) : null;
    const clockFor = (party: string) =>
      new LocalClock(
        wallAtZero + (party === skewed ? r.pick([-1, 1]) * r.int(1200, 3000) : r.int(-300, 300)),
        r.int(-100, 100),
        r.int(0, 10_000_000),
      );
    const mutation = options.mutation ?? null;
    for (const id of this.corridor.ids) {
      const x = this.corridor.intersections.get(id);
      if (!x) continue;
      const plans = new Map([...this.corridor.plans].map(([planId, p]) => [planId, p.parts.get(id)!]));
      const setup = { intersection: x.intersection, initialPlan: x.initialPlan, plans, setup: x.setup };
      this.gateways.set(
        id,
        new SimGateway(id, setup, clockFor(id), {
          seed: options.seed,
          trueNow: () => this.t,
          random: r,
          send: (e) => this.send(e),
          checker: this.checker,
          trace: (line) => this.trace(line),
          rules: DEFAULT_PREPARE_TIMING_RULES,
          mutation,
          planRejected: (txnId, intersection) => {
            const rejected = this.rejectedParts.get(txnId);
            return rejected && rejected.intersection === intersection ? rejected.reason : null;
          },
          retained: (txnId, reader) => this.network.retainedFor(txnId, reader),
          crashHere: (party, point) => this.crashHere(party, point),
          maxTickMs: TICK_MS + MAX_TICK_JITTER_MS,
          stopped: (party, tookMs) => this.stopped(party, tookMs),
        }),
      );
    }
    const coordinatorCount = r.int(1, 3);
    for (let i = 1; i <= coordinatorCount; i++) {
      const id = `@op${i}`;
      this.coordinators.set(
        id,
        new SimCoordinator(id, clockFor(id), {
          trueNow: () => this.t,
          random: r,
          send: (e) => this.send(e),
          retain: (record) => this.network.retain(record),
          checker: this.checker,
          trace: (line) => this.trace(line),
          mutation,
          // Short leases too (the authority accepts down to 1 s): they expire under a stall.
          config: { ...DEFAULT_COORDINATOR_CONFIG, leaseTtlMs: r.pick(SIM_LEASE_TTLS_MS) },
          crashHere: (party, point) => this.crashHere(party, point),
        }),
      );
    }
  }

  private trace(line: string): void {
    const text = `${(this.t / 1000).toFixed(3).padStart(9)}  ${line}`;
    this.ring.push(text);
    if (this.ring.length > Math.max(TRACE_RING, this.options.traceLines ?? 0)) this.ring.shift();
    for (let i = 0; i < text.length; i++) {
      this.traceHash ^= text.charCodeAt(i);
      this.traceHash = Math.imul(this.traceHash, 0x01000193) >>> 0;
    }
  }

  private send(e: SimEnvelope): void {
    this.stats.messages++;
    if ((e.body.type === "decision" || e.body.type === "answer") && e.body.signature !== undefined) {
      this.signaturesSeen.push(e.body.signature);
      if (this.signaturesSeen.length > RECENT_SENT) this.signaturesSeen.shift();
    }
    const key = `${e.from}>${e.to}`;
    const recent = this.recentlySent.get(key) ?? [];
    recent.push(e);
    if (recent.length > RECENT_SENT) recent.shift();
    this.recentlySent.set(key, recent);
    // A coordinator that stalls as it sends PREPARE (after checking its leases): the classic case for
    // fencing tokens — its PREPAREs reach the gateways after its leases may have expired.
    if (
      !this.healed &&
      e.body.type === "prepare" &&
      !this.paused(e.from) &&
      this.random.chance(this.crashPointRate)
    ) {
      const forMs = this.random.chance(0.5) ? this.random.int(200, 1_500) : this.random.int(5_000, 30_000);
      this.stall(e.from, forMs, ", as it sends PREPARE");
    }
    const until = this.pausedUntil.get(e.from) ?? -1;
    if (until > this.t) this.queue.at(until, () => this.network.send(e));
    else this.network.send(e);
  }

  private crashHere(party: string, point: string): boolean {
    // Not armed by a flood's own messages: their hundreds of forced writes would end every flood at once.
    if (this.healed || this.handlingFlood || !this.random.chance(this.crashPointRate)) return false;
    this.trace(`${party} crashes ${point}`);
    this.crash(party, 200, 15_000);
    return true;
  }

  /** Crashes a gateway or a coordinator, and restarts it after a random delay in [min, max] ms. */
  private crash(party: string, minRestartMs: number, maxRestartMs: number): void {
    const g = this.gateways.get(party);
    const c = this.coordinators.get(party);
    if (g) {
      g.crash();
      this.stats.gatewayCrashes++;
    } else if (c) {
      c.crash();
      this.stats.coordinatorCrashes++;
    }
    this.queue.at(this.t + this.random.int(minRestartMs, maxRestartMs), () => {
      if (g && !g.up) g.restart();
      if (c && !c.up) c.restart();
    });
  }

  /** A gateway's clean stop is done and its process exited: it is started again later. */
  private stopped(party: string, tookMs: number): void {
    const g = this.gateways.get(party);
    if (!g) return;
    this.stats.cleanStops++;
    this.stats.longestStopMs = Math.max(this.stats.longestStopMs, tookMs);
    const r = this.random;
    // Restarted at once (`systemctl restart`: within the module's watchdog), or after some maintenance.
    const afterMs = this.healed ? r.int(50, 1_000) : r.chance(0.3) ? r.int(50, 1_000) : r.int(1_000, 25_000);
    this.queue.at(this.t + afterMs, () => {
      if (!g.up) g.restart();
    });
  }

  /**
   * One member (a gateway's credentials, or a coordinator's) floods one gateway: thousands of corridor
   * messages within a short window — its own recent messages to it again (duplicated, stale), inquiries
   * it made of others asked again, and garbage that parses: inquiries, decisions, answers, votes and
   * acknowledgements about transactions nobody started, lease requests with made-up tokens or TTLs. The
   * gateway admits each through its per-sender token bucket; the excess is dropped before any work.
   */
  private flood(): void {
    const r = this.random;
    const up = [...this.gateways.values()].filter((g) => g.up);
    if (up.length === 0) return;
    let target = r.pick(up);
    let from = r.pick([...this.corridor.ids.filter((id) => id !== target.id), ...this.coordinators.keys()]);
    const asked: SimEnvelope[] = [];
    // Issue 12's reproduction was inquiries only (about made-up transactions, sometimes long enough
    // that the rate limit admits more than a participant's tombstones); "mixed" mixes every message;
    // "bystander" has a gateway in doubt ask one that takes no part in its transaction (whose honest
    // "aborted" must not end the doubt). The last two were product gaps the simulator found (fixed).
    const kind = r.pick(["mixed", "inquiries", "bystander"] as const);
    if (kind === "bystander") {
      // The credentials of a gateway in doubt ask a gateway that takes no part in its transaction.
      const doubting = [...this.gateways.values()].filter((g) => g.up && g.inDoubt());
      const asker = doubting.length > 0 ? r.pick(doubting) : null;
      const doubt = asker?.inDoubt();
      const bystanders = up.filter((g) => doubt && !doubt.participants.includes(g.id));
      if (asker && doubt && bystanders.length > 0) {
        from = asker.id;
        target = r.pick(bystanders);
        const body = { type: "inquiry" as const, txnId: doubt.txnId };
        asked.push({ from, to: target.id, sentAtWallMs: asker.clock.read(this.t).wallMs, body });
      }
    }
    let count = r.int(2_000, 20_000);
    let windowMs = r.int(200, 2_000);
    if (kind === "inquiries" && r.chance(0.5)) {
      // Long enough for the rate limit to let twice the participant's tombstones through.
      const { ratePerSecond, burst } = CORRIDOR_SENDER_LIMITS;
      windowMs = Math.max(windowMs, Math.ceil(((2 * MAX_TOMBSTONES - burst) / ratePerSecond) * 1000));
      count = Math.max(count, 4 * MAX_TOMBSTONES);
    }
    const latencyMs = r.int(this.network.faults.minLatencyMs, this.network.faults.maxLatencyMs);
    // What it asked others lately, to ask this one again (stale inquiries) — if this one takes part in
    // that transaction: a participant's "aborted" means it will never vote yes; a bystander's, only
    // that it never heard of it (the "bystander" flood).
    for (const [key, sent] of this.recentlySent)
      if (key.startsWith(`${from}>`))
        for (const e of sent)
          if (
            e.body.type === "inquiry" &&
            (kind === "bystander" ||
              this.checker.txns.get(e.body.txnId)?.participants.includes(target.id) === true)
          )
            asked.push(e);
    const flood: Flood = { no: ++this.stats.floods, from, to: target.id, kind, asked };
    this.stats.floodMessages += count;
    this.trace(`FLOOD ${from}->${target.id}: ${count} messages (${kind}) in ${windowMs} ms`);
    const slices = Math.max(1, Math.ceil(windowMs / FLOOD_SLICE_MS));
    const tally = { admitted: 0, dropped: 0, lost: 0 };
    for (let k = 0; k < slices; k++) {
      const n = Math.floor(((k + 1) * count) / slices) - Math.floor((k * count) / slices);
      const last = k === slices - 1;
      this.queue.at(this.t + k * FLOOD_SLICE_MS + latencyMs, () => {
        this.floodSlice(from, target, n, flood, tally);
        if (last)
          this.trace(
            `FLOOD ${from}->${target.id} over: ${tally.admitted} admitted, ${tally.dropped} dropped, ${tally.lost} lost`,
          );
      });
    }
  }

  private floodSlice(
    from: string,
    target: SimGateway,
    n: number,
    flood: Flood,
    tally: { admitted: number; dropped: number; lost: number },
  ): void {
    if (!target.up || !this.network.passes(from, target.id)) {
      this.floodLost += n;
      tally.lost += n;
      return;
    }
    // Admission looks at the sender only (the topic's last level), never at the body, as the slice's
    // messages arrive; the admitted ones are handled after, as the gateway's inbound queue drains.
    const admitted = target.admitMany(from, n);
    tally.dropped += n - admitted;
    for (let i = 0; i < admitted; i++) {
      if (!target.up) {
        this.floodLost += admitted - i;
        tally.lost += admitted - i;
        return;
      }
      tally.admitted++;
      const e = this.floodMessage(flood);
      this.trace(`flood ${describeEnvelope(e)}`);
      this.handlingFlood = true;
      target.handle(e);
      this.handlingFlood = false;
    }
  }

  private floodMessage(flood: Flood): SimEnvelope {
    const r = this.random;
    const { from, to, no } = flood;
    const sender = this.gateways.get(from) ?? this.coordinators.get(from);
    const wallMs = sender ? sender.clock.read(this.t).wallMs : 0;
    const own = this.recentlySent.get(`${from}>${to}`) ?? [];
    // A duplicate of a real message, sent again as it was (with its old timestamp: stale).
    if (flood.kind === "mixed" && own.length > 0 && r.chance(0.4)) return r.pick(own);
    // An inquiry it made of another member, asked of this one too.
    if (flood.asked.length > 0 && r.chance(0.2)) return { ...r.pick(flood.asked), to, sentAtWallMs: wallMs };
    const made = r.int(1, flood.kind === "mixed" ? FLOOD_GARBAGE_IDS : 1_000_000);
    if (flood.kind !== "mixed")
      return { from, to, sentAtWallMs: wallMs, body: { type: "inquiry", txnId: `flood${no}-a${made}` } };
    // Garbage, but never self-contradictory: an id made up as committed is never said to be aborted
    // (and an inquiry makes its id aborted where it was never prepared). Saying both of one transaction
    // is a forgery (issue 20), which the participant's own invariant refuses.
    const outcome = r.pick(["committed", "aborted"] as const);
    const txnId = `flood${no}-${outcome === "committed" ? "c" : "a"}${made}`;
    const token = r.int(0, 2 ** 31);
    const body: CorridorBody = r.pick<() => CorridorBody>([
      () => ({ type: "inquiry", txnId: `flood${no}-a${made}` }),
      () => ({ type: "decision", txnId, outcome, token }),
      () => ({ type: "answer", txnId, answer: outcome }),
      () => ({ type: "answer", txnId, answer: "prepared" }),
      () => ({ type: "vote", txnId, yes: r.chance(0.5), reason: null }),
      () => ({ type: "ack", txnId, outcome }),
      () => ({ type: "renew", token, ttlMs: r.int(1, 3_600_000) }),
      () => ({ type: "release", token }),
      () => ({ type: "acquire", requestId: txnId, ttlMs: r.pick([1, 999, 1_000, 3_000, 60_001, 3_600_000]) }),
    ])();
    return { from, to, sentAtWallMs: wallMs, body };
  }

  /**
   * The Byzantine member's forgery, sent with its own (valid) credentials: the sender is its own id, as
   * the broker's ACL makes it. It aims at a gateway in doubt when there is one: a decision or an answer
   * about that transaction, either outcome, unsigned, with a made-up signature or with one replayed from
   * another transaction; a decision record retained under its own branch naming the real coordinator;
   * or a PREPARE copied from a real one with a fencing token nobody granted (issue 20, item 1).
   */
  private forge(byzantine: string): void {
    const f = this.forgeRandom;
    const b = this.gateways.get(byzantine);
    const targets = [...this.gateways.values()].filter((g) => g.up && g.id !== byzantine);
    if (!b?.up || targets.length === 0) return;
    const doubting = targets.filter((g) => g.inDoubt() !== null);
    const target = doubting.length > 0 && f.chance(0.85) ? f.pick(doubting) : f.pick(targets);
    const doubt = target.inDoubt();
    const known = [...this.checker.txns.keys()];
    const txnId = doubt?.txnId ?? (known.length > 0 ? f.pick(known) : `forged-${this.stats.forgeries}`);
    const outcome = f.pick(["committed", "aborted"] as const);
    const madeUp = () => Buffer.from(Array.from({ length: 64 }, () => f.int(0, 255))).toString("base64");
    const how = f.int(0, 2);
    const signature =
      how === 1
        ? madeUp()
        : how === 2 && this.signaturesSeen.length > 0
          ? f.pick(this.signaturesSeen)
          : undefined;
    const signed = signature !== undefined ? { signature } : {};
    const wallMs = b.clock.read(this.t).wallMs;
    const kind = f.pick(["decision", "answer", "record", "token"] as const);
    this.stats.forgeries++;
    if (kind === "record") {
      this.trace(`FORGE ${byzantine}: retained record ${txnId} ${outcome}${signature ? " (signature)" : ""}`);
      this.network.retain({
        txnId,
        publishedBy: byzantine,
        coordinator: doubt?.coordinator ?? "@unknown",
        outcome,
        ...signed,
      });
      return;
    }
    let body: CorridorBody;
    if (kind === "token") {
      const prepares = [...this.recentlySent.values()].flat().filter((e) => e.body.type === "prepare");
      if (prepares.length === 0) return;
      const real = f.pick(prepares).body as Extract<CorridorBody, { type: "prepare" }>;
      body = {
        ...real,
        txnId: `forged-${this.stats.forgeries}`,
        token: Number.MAX_SAFE_INTEGER - f.int(0, 1000),
        participants: [target.id],
      };
    } else if (kind === "decision")
      body = { type: "decision", txnId, outcome, token: f.int(0, 2 ** 31), ...signed };
    else body = { type: "answer", txnId, answer: outcome, ...signed };
    const e: SimEnvelope = { from: byzantine, to: target.id, sentAtWallMs: wallMs, body };
    this.trace(`FORGE ${describeEnvelope(e)}${signature ? " (signature)" : ""}`);
    if (!this.network.passes(byzantine, target.id)) return;
    this.queue.at(this.t + f.int(1, 60), () => {
      if (target.up) this.deliver(e);
    });
  }

  /** A party stalls (a GC pause, a suspended laptop): what it sends and what reaches it waits. */
  private stall(party: string, forMs: number, why: string): void {
    this.trace(`PAUSE ${party} for ${forMs} ms${why}`);
    this.pausedUntil.set(party, this.t + forMs);
    this.stats.pauses++;
  }

  private paused(party: string): boolean {
    return (this.pausedUntil.get(party) ?? -1) > this.t;
  }

  private deliver(e: SimEnvelope): void {
    // A coordinator that stalls just as a lease is granted wakes up to a lease that may have expired:
    // what the fencing tokens are for.
    if (
      !this.healed &&
      this.coordinators.has(e.to) &&
      e.body.type === "lease" &&
      e.body.reply.type === "granted" &&
      !this.paused(e.to) &&
      this.random.chance(this.crashPointRate)
    ) {
      this.stall(e.to, this.random.int(5_000, 30_000), ", as a lease is granted");
    }
    const until = this.pausedUntil.get(e.to) ?? -1;
    if (until > this.t) {
      this.queue.at(until, () => this.deliver(e));
      return;
    }
    if (e.body.type !== "renew" && !(e.body.type === "lease" && e.body.reply.type === "renewed"))
      this.trace(describeEnvelope(e));
    this.gateways.get(e.to)?.receive(e);
    this.coordinators.get(e.to)?.receive(e);
  }

  private every(periodMs: () => number, action: () => void): void {
    const loop = () => {
      action();
      this.queue.at(this.t + periodMs(), loop);
    };
    this.queue.at(this.t + periodMs(), loop);
  }

  /** A fault that strikes again after a random gap, until the network heals. */
  private faultEvery(minGapMs: number, maxGapMs: number, strike: () => void): void {
    const loop = () => {
      if (this.healed) return;
      strike();
      this.queue.at(this.t + this.random.int(minGapMs, maxGapMs), loop);
    };
    this.queue.at(this.t + this.random.int(minGapMs, maxGapMs), loop);
  }

  private schedule(): void {
    const r = this.random;
    for (const g of this.gateways.values())
      this.every(
        () => TICK_MS + r.int(0, MAX_TICK_JITTER_MS),
        () => g.tick(),
      );
    for (const c of this.coordinators.values()) {
      let nextPushAt = r.int(5_000, 30_000);
      this.every(
        () => COORDINATOR_TICK_MS,
        () => {
          if (this.paused(c.id)) return;
          c.tick();
          if (!this.healed && c.up && !c.busy() && this.t >= nextPushAt) {
            this.push(c);
            // With schedules, fewer manual changes: the schedule must govern between them.
            nextPushAt = this.t + (this.schedulesOn ? r.int(5_000, 60_000) : r.int(1_000, 40_000));
          }
        },
      );
    }
    const calm = r.chance(0.1);
    if (calm) return;
    const ids = [...this.gateways.keys()];
    this.faultEvery(10_000, 90_000, () => {
      const g = this.gateways.get(r.pick(ids)) as SimGateway;
      if (g.up) this.crash(g.id, 500, 25_000);
    });
    this.faultEvery(20_000, 150_000, () => {
      const c = r.pick([...this.coordinators.values()]);
      if (c.up) this.crash(c.id, 500, 30_000);
    });
    this.faultEvery(20_000, 120_000, () => {
      const c = r.pick([...this.coordinators.values()]);
      this.stall(c.id, r.int(1_000, 30_000), "");
    });
    this.faultEvery(30_000, 240_000, () => {
      const down = r.int(200, 5_000);
      this.trace(`BROKER RESTART (down ${down} ms)`);
      this.network.restartBroker(down);
      this.stats.brokerRestarts++;
    });
    this.faultEvery(20_000, 150_000, () => {
      const g = this.gateways.get(r.pick(ids)) as SimGateway;
      if (g.up && !g.stopping) g.stop();
    });
    this.faultEvery(60_000, 240_000, () => this.flood());
    // One member of the corridor in half the runs is Byzantine (issue 20): with its own, valid
    // credentials it forges decisions, answers, retained records and fencing tokens, every few seconds.
    const f = this.forgeRandom;
    if (f.chance(0.5)) {
      const byzantine = f.pick(ids);
      this.trace(`BYZANTINE ${byzantine}: forges decisions, records and tokens until healing`);
      const loop = () => {
        if (this.healed) return;
        this.forge(byzantine);
        this.queue.at(this.t + f.int(500, 6_000), loop);
      };
      this.queue.at(this.t + f.int(500, 6_000), loop);
    }
    this.faultEvery(10_000, 120_000, () => {
      const party = r.pick([...ids, ...this.coordinators.keys()]);
      const forMs = r.int(1_000, 30_000);
      this.trace(`PARTITION ${party} for ${forMs} ms`);
      this.network.partition(party, this.t + forMs);
      this.stats.partitions++;
    });
  }

  private push(c: SimCoordinator): void {
    const r = this.random;
    if (this.schedulesOn && r.chance(this.scheduleCommitted() ? 0.25 : 0.6)) return this.pushSchedule(c);
    // Without schedules, now and then a cancel of a change still waiting (`plan cancel`).
    if (!this.schedulesOn && r.chance(0.3) && this.pushCancel(c)) return;
    const ids = this.corridor.ids;
    const [planId, plan] = r.pick([...this.corridor.plans]);
    const from = r.int(0, ids.length - 2);
    const to = r.chance(0.5) ? ids.length - 1 : r.int(from + 1, ids.length - 1);
    const participants = ids.slice(from, to + 1);
    const txnId = `${c.id.slice(1)}-${++this.stats.pushes}`;
    if (r.chance(0.05)) {
      const intersection = r.pick(participants);
      this.rejectedParts.set(txnId, {
        intersection,
        reason: `plan ${planId} fails the signal core's checks at ${intersection} (simulated)`,
      });
    }
    const earliest = c.wallNow() + r.int(2_000, 20_000);
    const activationWallMs = nextCommonBoundary(earliest, this.corridor.timeReference, plan.cycleMs);
    // A manual change over a schedule wins until a stated instant, the next scheduled change, or the
    // next schedule push (`plan push --until`, none, `--hold`).
    const until = !this.schedulesOn
      ? undefined
      : r.chance(0.5)
        ? activationWallMs + r.int(5_000, 90_000)
        : r.chance(0.7)
          ? undefined
          : ("hold" as const);
    const ref: PlanRef = { planId, version: plan.version, digest: plan.digest };
    c.push({ txnId, participants, plan: until === undefined ? ref : { ...ref, until }, activationWallMs });
  }

  /** A cancel of a committed change whose instant is still ahead, not cancelled yet; false: none. */
  private pushCancel(c: SimCoordinator): boolean {
    const wall = c.wallNow();
    const txns = [...this.checker.txns.values()];
    const waiting = txns.filter(
      (f) =>
        f.decision === "committed" &&
        !isScheduleKey(f.plan.planId) &&
        cancelTarget(f.plan.planId) === null &&
        f.activationWallMs > wall + 2_500 &&
        !txns.some((o) => cancelTarget(o.plan.planId) === f.txnId && o.decision !== "aborted"),
    );
    if (waiting.length === 0) return false;
    const target = this.random.pick(waiting);
    const txnId = `${c.id.slice(1)}-${++this.stats.pushes}`;
    this.stats.cancels++;
    c.push({
      txnId,
      participants: [...target.participants],
      plan: { planId: cancelKey(target.txnId), version: 0 },
      activationWallMs: target.activationWallMs,
    });
    return true;
  }

  private scheduleCommitted(): boolean {
    for (const facts of this.checker.txns.values())
      if (facts.decision === "committed" && isScheduleKey(facts.plan.planId)) return true;
    return false;
  }

  /**
   * A coordinator pushes a new random schedule (`schedule push`) to every intersection: the schedule
   * file with every plan it names, as a bundle; it governs from the transaction's instant.
   */
  private pushSchedule(c: SimCoordinator): void {
    const r = this.random;
    const corridor = this.corridor;
    const id = r.chance(0.8) ? "sim-week" : "sim-alt";
    const version = (this.scheduleVersions.get(id) ?? 0) + 1;
    this.scheduleVersions.set(id, version);
    const runEnd = this.wallAtZero + this.faultMs + this.settleMs;
    const { raw, schedule } = randomScheduleFile(r, {
      id,
      version,
      corridor: corridor.id,
      zone: corridor.scheduleZone,
      planIds: [...corridor.plans.keys()],
      fromWallMs: this.wallAtZero + this.t + 10_000,
      toWallMs: Math.max(this.wallAtZero + this.t + 20_000, runEnd - 60_000),
    });
    const named = new Set(
      Object.values(schedule.dayPlans).flatMap((events) =>
        events.flatMap((e) => (e.action.kind === "plan" ? [e.action.planId] : [])),
      ),
    );
    const plans = [...corridor.plans].filter(([planId]) => named.has(planId));
    const bundle = {
      schedule: raw,
      timeReference: corridor.rawTimeReference,
      plans: Object.fromEntries(plans.map(([planId, p]) => [planId, p.raw])),
    };
    const txnId = `${c.id.slice(1)}-${++this.stats.pushes}`;
    this.stats.schedulePushes++;
    const { dayPlans, calendar } = raw as { dayPlans: unknown; calendar: unknown };
    this.trace(
      `${txnId}: schedule ${id} v${version} in ${corridor.scheduleZone} ${JSON.stringify({ dayPlans, calendar })}`,
    );
    if (r.chance(0.05)) {
      const intersection = r.pick(corridor.ids);
      this.rejectedParts.set(txnId, {
        intersection,
        reason: `schedule ${id} v${version} fails the signal core's checks at ${intersection} (simulated)`,
      });
    }
    this.checker.schedulePushed(txnId, {
      schedule,
      timeReference: corridor.timeReference,
      cycleMs: new Map([...corridor.plans].map(([planId, p]) => [planId, p.cycleMs])),
    });
    const activationWallMs = c.wallNow() + r.int(2_000, 20_000);
    c.push({
      txnId,
      participants: corridor.ids,
      plan: { planId: scheduleKey(id), version, digest: scheduleBundleDigest(bundle) },
      activationWallMs,
      planFile: bundle,
    });
    this.downAcross(schedule, activationWallMs);
  }

  /** Sometimes a gateway goes down just before the schedule's next change and comes back well after it. */
  private downAcross(schedule: Schedule, fromWallMs: number): void {
    const r = this.random;
    const change = nextChange(schedule, fromWallMs, 2);
    if (!change || !r.chance(0.5)) return;
    const at = change.atWallMs - this.wallAtZero - r.int(0, 20_000);
    if (at <= this.t || at >= this.faultMs) return;
    const g = r.pick([...this.gateways.values()]);
    this.queue.at(at, () => {
      if (this.healed || !g.up) return;
      this.trace(
        `${g.id} goes down across the scheduled change at ${new Date(change.atWallMs).toISOString()}`,
      );
      this.crash(g.id, 20_000, 90_000);
    });
  }

  private view(): CorridorView {
    return {
      coordinatorsBusy: [...this.coordinators.values()].flatMap((c) => c.active().map((s) => s.txnId)),
      gateways: [...this.gateways.values()].map((g) => {
        const lease = g.leaseHeld();
        return {
          id: g.id,
          inDoubt: g.inDoubt()?.txnId ?? null,
          lease: lease ? `${lease.holder} #${lease.token}` : null,
          plan: { planId: g.controller.seq.plan.planId, version: g.controller.seq.plan.version },
          mode: controllerMode(g.controller),
          wallMs: g.clock.read(this.t).wallMs,
        };
      }),
    };
  }

  private heal(): void {
    this.healed = true;
    this.trace("HEAL: faults stop, everything restarts, no new pushes");
    this.network.heal();
    this.pausedUntil.clear();
    for (const g of this.gateways.values()) if (!g.up) g.restart();
    for (const c of this.coordinators.values()) if (!c.up) c.restart();
  }

  run(): SimulationResult {
    let violation: SimulationResult["violation"] = null;
    try {
      this.schedule();
      this.queue.at(this.faultMs, () => this.heal());
      const bound = livenessBoundMs();
      this.queue.at(this.faultMs + bound, () => this.checker.quiescent(this.view(), bound));
      const end = this.faultMs + this.settleMs;
      for (let event = this.queue.pop(); event && event.at <= end; event = this.queue.pop()) {
        this.t = event.at;
        event.run();
      }
      this.t = end;
      this.checker.final(this.view());
    } catch (error) {
      // The machines' own checks (`invariant()` in gateway/core) fail the run as loudly as the checker's.
      // (The participant shell refuses a message whose step broke one; the simulator's step escalates it.)
      if (error instanceof InvariantViolation || error instanceof MachineInvariantBroken)
        violation = { invariant: "product-invariant", message: `product-invariant: ${error.message}` };
      else if (error instanceof SimulationViolation)
        violation = { invariant: error.invariant, message: error.message };
      else throw error;
      this.trace(`VIOLATION ${violation.message}`);
    }
    for (const facts of this.checker.txns.values()) {
      if (facts.decision === "committed") this.stats.committed++;
      else this.stats.aborted++;
      if (facts.decision === "committed" && isScheduleKey(facts.plan.planId)) this.stats.schedulesCommitted++;
      if (facts.decision === "committed" && cancelTarget(facts.plan.planId) !== null)
        this.stats.cancelsCommitted++;
    }
    this.stats.scheduleCycleChecks = this.checker.schedules.counters.inStepCycles;
    this.stats.scheduledEntries = this.checker.schedules.counters.scheduledEntries;
    this.stats.messagesLost = this.network.stats.lost + this.network.stats.lostToBroker + this.floodLost;
    for (const g of this.gateways.values()) this.stats.messagesDropped += g.dropped;
    return {
      seed: this.options.seed,
      violation,
      trace: this.ring.slice(-(this.options.traceLines ?? 60)),
      stats: this.stats,
      simulatedMs: this.t,
      traceDigest: this.traceHash.toString(16).padStart(8, "0"),
    };
  }
}
