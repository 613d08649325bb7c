import { DEFAULT_COORDINATOR_CONFIG } from "../../gateway/core/corridor/coordinator.js";
import { nextCommonBoundary } from "../../gateway/core/corridor/boundary.js";
import { INQUIRY_MAX_MS } from "../../gateway/core/corridor/participant.js";
import { DEFAULT_PREPARE_TIMING_RULES } from "../../gateway/core/corridor/prepare-check.js";
import { DAY_MS } from "../../gateway/core/model.js";
import { type CorridorView, InvariantChecker, type InvariantName, SimulationViolation } from "./checker.js";
import { loadSimCorridor, type SimCorridor } from "./corridor-data.js";
import { EventQueue } from "./event-queue.js";
import { LocalClock } from "./local-clock.js";
import type { Mutation } from "./mutations.js";
import { describeEnvelope, type NetworkFaults, SimNetwork, type SimEnvelope } from "./network.js";
import { SeededRandom } from "./random.js";
import { SimCoordinator } from "./sim-coordinator.js";
import { SimGateway } from "./sim-gateway.js";

export interface SimulationOptions {
  readonly seed: number;
  readonly corridorFile?: string;
  /** Simulated time with faults and plan pushes, then with neither (healing). */
  readonly faultMs?: number;
  readonly settleMs?: number;
  readonly mutation?: Mutation | null;
  /** How many of the last trace lines a result keeps. */
  readonly traceLines?: number;
}

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
  };
  private readonly faultMs: number;
  /** How often a party crashes at a critical point of the protocol (FoundationDB's "buggify"). */
  private readonly crashPointRate: number;
  /** Parties stalled (a GC pause, a suspended laptop) until this true time: what reaches them waits. */
  private readonly pausedUntil = new Map<string, number>();
  private readonly settleMs: number;

  constructor(private readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    this.corridor = loadSimCorridor(options.corridorFile ?? "config/corridor.yaml");
    this.faultMs = options.faultMs ?? 240_000;
    this.settleMs = options.settleMs ?? 240_000;
    const r = this.random;
    this.crashPointRate = r.pick([0, 0.01, 0.05, 0.15]);
    const maxStages = Math.max(
      ...[...this.corridor.plans.values()].flatMap((p) => [...p.parts.values()].map((x) => x.stages.length)),
    );
    this.checker = new InvariantChecker(TICK_MS + MAX_TICK_JITTER_MS, maxStages);
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
    // Wall clocks start somewhere in a day (the daily sync point may fall inside the run).
    const wallAtZero = Date.UTC(2026, 2, 2) + r.int(0, DAY_MS - 1);
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
      this.gateways.set(
        id,
        new SimGateway(id, x.intersection, x.initialPlan, plans, clockFor(id), {
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
    if (this.healed || !this.random.chance(this.crashPointRate)) return false;
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
            nextPushAt = this.t + r.int(1_000, 40_000);
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
    c.push({
      txnId,
      participants,
      plan: { planId, version: plan.version },
      activationWallMs: nextCommonBoundary(earliest, this.corridor.dailySyncMs, plan.cycleMs),
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
      if (!(error instanceof SimulationViolation)) throw error;
      violation = { invariant: error.invariant, message: error.message };
      this.trace(`VIOLATION ${error.message}`);
    }
    for (const facts of this.checker.txns.values()) {
      if (facts.decision === "committed") this.stats.committed++;
      else this.stats.aborted++;
    }
    this.stats.messagesLost = this.network.stats.lost + this.network.stats.lostToBroker;
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
