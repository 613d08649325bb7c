import { SeededRandom } from "../../simulators/corridor/random.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { IN_STEP_TOLERANCE_MS } from "../../gateway/core/model.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { readModuleState } from "../support/lamp-history.js";
import {
  alive,
  type CleanStop,
  type DecisionRow,
  FIXTURE_LAYOUT,
  Fleet,
  flood,
  floodClient,
  type FloodReport,
  type HistoryEntry,
  lampViolations,
  metricSum,
  type PedestrianChannels,
  type VehicleChannels,
  normalWindows,
  readCoordinatorLog,
  readGatewayStore,
  RECOVERY_SCRIPT,
  sleep,
  type Spawned,
  stopViolations,
  type StoreView,
  untilAsync,
  watchdogTrips,
  type WireMessage,
  watchProtocol,
} from "./chaos-support.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs } from "./processes.js";

/**
 * A process-level chaos test: a corridor of four intersections as real processes (one broker, one
 * simulated I/O module and one gateway per intersection), `plan push` run again and again, and at a
 * random point of each push one fault:
 * - `kill`: a `kill -9` of one gateway or of the broker (in turn), restarted a moment later;
 * - `stop`: a clean stop of one gateway (SIGTERM once, as `systemctl stop` sends): it must end every
 *   green, walk and clearance through its minimums and clearances to all-red, write the module's safe
 *   state and exit 0 with outcome "clean" (within its logged bound); it is started again once it has
 *   exited. Its lamps get no outage exemption for the stop: `lampViolations` and the stop's own rules
 *   (`stopViolations`: nothing new starts, minimums served, every WALK through its flashing clearance,
 *   all-red at the hand-over) hold up to the hand-over, and the module's watchdog may trip only after it;
 * - `flood`: one corridor member's name (the inbox topics' sender level; the broker is open, so any
 *   client id will do) floods one to three other gateways' inboxes for 1–2 s, concurrently with the
 *   push, with thousands of messages: inquiries about unknown transactions and about the one in
 *   progress, duplicated votes and acknowledgements of it, malformed bodies. The push's outcome stays
 *   atomic, the targets' modules' watchdogs never trip, no fault latches, and the drops are counted in
 *   `greenwave_inbound_dropped_total`.
 * After each push, once the corridor has settled, the corridor protocol's invariants are checked from
 * the gateways' stores and the coordinator's log (atomicity; durability and the plan in force for a
 * killed or stopped gateway); at the end, signal safety from what the lamps did.
 *
 * Seeded: GREENWAVE_CHAOS_SEED replays the same choices (faults, victims, fault points, delays, flood
 * sizes; the timing of the processes themselves is not replayed). GREENWAVE_CHAOS_ROUNDS sets the number
 * of pushes. The fault kinds rotate over GREENWAVE_CHAOS_FAULTS (default `kill,stop,flood`), starting
 * where the seed says: round r gets kind (r + seed) mod 3, so the default three rounds run each kind
 * once, whatever the seed; the `kill` rounds alternate between a gateway and the broker.
 * GREENWAVE_CHAOS_MIN_RESTART_MS is the shortest pause before a killed or stopped gateway is started
 * again (0 by default; the pause is drawn up to 4 s past it): often shorter than the module's host
 * watchdog (2 s in the fixture), so the new process finds the dead one's lamps still lit and must take
 * them over and clear them (seed 1002 found it cutting a green without yellow before that was fixed);
 * sometimes longer, so it finds the module in its safe state.
 *
 * Restarts without the start-up flash (issue 19, item 16): every restart's start-up (`how` in its
 * `gateway-started` audit: resumed, warm or cold) is counted. After the rounds, each gateway is killed
 * (`kill -9`) in the middle of a green it runs in step and started again at once, within its module's
 * watchdog: it must take the lamps over (resumed; cold only if the watchdog tripped first), and for a
 * resumed one the lamps get no outage exemption — the safety oracle, dark heads included, holds
 * straight across the kill and the restart. A clean stop's restart that started warm must show no
 * flash between the hand-over and its first green.
 */
const SEED = Number(process.env.GREENWAVE_CHAOS_SEED ?? Date.now() % 2_147_483_647);
const ROUNDS = Number(process.env.GREENWAVE_CHAOS_ROUNDS ?? 3);
type FaultKind = "kill" | "stop" | "flood";
const FAULT_KINDS: readonly FaultKind[] = ["kill", "stop", "flood"];
const FAULTS = (process.env.GREENWAVE_CHAOS_FAULTS ?? FAULT_KINDS.join(","))
  .split(",")
  .map((k) => k.trim()) as FaultKind[];
for (const k of FAULTS)
  if (!FAULT_KINDS.includes(k))
    throw new Error(`GREENWAVE_CHAOS_FAULTS: ${k} is not one of ${FAULT_KINDS.join(", ")}`);
const WATCHDOG_MS = 2000;
const MIN_RESTART_MS = Number(process.env.GREENWAVE_CHAOS_MIN_RESTART_MS ?? 0);
const CORRIDOR = "test-corridor";
const COORDINATOR = "chaos";
const CYCLE_MS = 30_000;
/** Lamp changes happen on 100 ms ticks, stamped by the module when the write arrives. */
const TOLERANCE_MS = 300;
/** A push is bounded: lease attempts with back-off, the vote timeout, the ack timeout (10 s here). */
const PUSH_BOUND_MS = 45_000;
/** Participants in doubt ask the coordinator and their peers (back-off 1 s to 30 s). */
const SETTLE_MS = 35_000;
/** How much later than its logged bound a clean stop may exit: its teardown after the safe state, on a busy machine. */
const STOP_EXIT_MARGIN_MS = 3000;
/** A flood: this many messages in all (over its targets), over this long. */
const FLOOD_MESSAGES = [3000, 8000] as const;
const FLOOD_MS = [1000, 2000] as const;

const fleet = new Fleet();
let observer: MqttClient | null = null;

beforeAll(() => buildOnce(), 180_000);
afterEach(async () => {
  await observer?.endAsync(true).catch(() => {});
  observer = null;
  await fleet.stopAll();
  await cleanupProcesses();
}, 60_000);

interface StatusJson {
  intersections: {
    id: string;
    online: boolean;
    plan: { id: string } | null;
    mode: string | null;
    fault: unknown;
    lock: unknown;
    lastTxn: { id: string; outcome: string } | null;
  }[];
}

interface PushJson {
  txnId: string;
  outcome: string;
  activationAt: string;
  votes: { intersection: string; vote: string }[];
  unacknowledged: string[];
}

/** The cycle starts a gateway process logged (its plan, and when). */
const cycleStarts = (p: Spawned) =>
  p.lines
    .filter((l) => l.msg === "cycle-start")
    .map((l) => ({ at: Date.parse(String(l.time)), planId: (l.event as { planId?: string }).planId }));

type Fault =
  | { kind: "kill-broker" }
  | { kind: "kill-gateway"; id: string }
  | { kind: "stop"; id: string }
  | { kind: "flood"; from: string; targets: string[]; messages: number; durationMs: number };

const describeFault = (f: Fault) =>
  f.kind === "kill-broker"
    ? "kill -9 the broker"
    : f.kind === "kill-gateway"
      ? `kill -9 gateway ${f.id}`
      : f.kind === "stop"
        ? `SIGTERM (clean stop) gateway ${f.id}`
        : `flood from ${f.from} into ${f.targets.join(",")} (${f.messages} messages over ${f.durationMs} ms)`;

describe("chaos: kill -9, clean stop or flood of a gateway, or kill -9 of the broker, during plan push, as processes", () => {
  it(`the corridor switch stays atomic and durable, and the lamps safe (seed ${SEED}; replay with GREENWAVE_CHAOS_SEED=${SEED})`, async () => {
    const rng = new SeededRandom(SEED);
    const chaosLog: string[] = [];
    const note = (line: string) => {
      chaosLog.push(`${new Date().toISOString()} ${line}`);
    };
    const why = (what: string) =>
      `${what}\n  seed ${SEED} (replay: GREENWAVE_CHAOS_SEED=${SEED})\n  ${chaosLog.join("\n  ")}`;

    // --- the corridor, as a user starts it: modules, broker, one gateway per intersection ---
    const sims = [0, 1, 2, 3].map((i) =>
      fleet.start(`sim x${i + 1}`, ["sim", "io-module", "--tcp", "0", "--control", "0"]),
    );
    const listening = await until("the simulators", 15_000, () => {
      const up = sims.map((p) => p.lines.find((l) => l.event === "listening"));
      return up.every(Boolean) ? (up as Record<string, unknown>[]) : null;
    });
    const fixture = writeCorridorFixture(4, { devicePort: (i) => Number(listening[i]?.modbusPort) });
    dirs.push(fixture.dir);
    const ids = fixture.ids;
    const control = new Map(ids.map((id, i) => [id, String(listening[i]?.control)]));
    const root = mkdtempSync(join(tmpdir(), "greenwave-chaos-"));
    dirs.push(root);
    const coordinatorDir = join(root, "coordinator");
    const coordinatorLog = join(coordinatorDir, "coordinator.db");
    const storeFile = (id: string) => join(root, id, id, "gateway.db");

    const brokerPort = await freePort();
    const url = `mqtt://127.0.0.1:${brokerPort}`;
    const startBroker = async (label: string): Promise<Spawned> => {
      for (let attempt = 1; ; attempt++) {
        const broker = fleet.start(label, ["broker", "--port", String(brokerPort)]);
        const up = await untilAsync(`the broker (${label})`, 10_000, async () =>
          broker.lines.some((l) => l.msg === "broker listening") ? "up" : alive(broker) ? null : "exited",
        );
        if (up === "up") return broker;
        if (attempt === 10) throw new Error(why(`the broker would not start again on port ${brokerPort}`));
        await sleep(300);
      }
    };
    let broker = await startBroker("broker");
    const gatewayArgs = (id: string) => [
      "gateway",
      "--config",
      join(fixture.dir, `${id}.yaml`),
      "--data-dir",
      join(root, id),
      "--broker",
      url,
      "--http",
      "127.0.0.1:0",
    ];
    const gateways = new Map(ids.map((id) => [id, fleet.start(`gateway ${id}`, gatewayArgs(id))]));
    /** A gateway's /healthz and /metrics (the process running now). */
    const httpOf = (id: string) => {
      const line = gateways.get(id)?.lines.find((l) => l.msg === "gateway started");
      return typeof line?.http === "string" ? line.http : null;
    };

    const stores = () => new Map(ids.map((id) => [id, readGatewayStore(storeFile(id))]));
    const status = (): StatusJson | null => {
      const run = cli(["status", "--broker", url, "--corridor", CORRIDOR, "--json", "--timeout-ms", "2000"]);
      return run.status === 0 ? (JSON.parse(run.stdout) as StatusJson) : null;
    };
    let lastStatus: StatusJson | null = null;
    const ready = () => {
      const s = status();
      lastStatus = s;
      return s &&
        s.intersections.length === ids.length &&
        s.intersections.every(
          (i) =>
            i.online &&
            (i.mode === "transition" || i.mode === "coordinated") &&
            i.lock === null &&
            i.lastTxn?.outcome !== "in-doubt",
        )
        ? s
        : null;
    };

    // The coordinator's traffic on the wire: kill points are counted in its messages.
    let onWire: ((m: WireMessage) => void) | null = null;
    let wire: WireMessage[] = [];
    observer = await watchProtocol(url, CORRIDOR, `@${COORDINATOR}`, (m) => {
      wire.push(m);
      onWire?.(m);
    });

    /**
     * Per intersection: from when its module was without a master (a kill; a clean stop's hand-over to
     * the safe state, not its signal) until its gateway was started again: the module's watchdog may
     * trip only in between.
     */
    const outages = new Map<string, { goneAt: number; restartedAt: number }[]>(ids.map((id) => [id, []]));
    const counts = { committed: 0, aborted: 0, neverPrepared: 0, recoveries: 0, pushesKilled: 0 };
    /** Restarts by their start-up (resumed, warm, cold). */
    const restarts: Record<string, number> = {};
    const faults = { "kill-broker": 0, "kill-gateway": 0, stop: 0, flood: 0 };

    for (let round = 1; round <= ROUNDS; round++) {
      try {
        await until(`round ${round}: every gateway running, unlocked, in no doubt`, 90_000, ready);
      } catch (error) {
        throw new Error(why(`${(error as Error).message}; last status: ${JSON.stringify(lastStatus)}`));
      }
      const roundStart = Date.now();
      const before = stores();
      const inForce = new Set([...before.values()].map((s) => s.planInForce?.planId));
      expect(inForce.size, why(`round ${round}: plans in force differ: ${[...inForce].join(", ")}`)).toBe(1);
      const previousPlan = [...inForce][0] as string;
      const planId = previousPlan === "shifted" ? "base" : "shifted";
      const known = new Set([
        ...[...before.values()].flatMap((s) => s.txns.map((t) => t.txn_id)),
        ...readCoordinatorLog(coordinatorLog).map((d) => d.txn_id),
      ]);

      // The seeded choices of this round: the fault's kind rotates (see the header), the rest is drawn.
      const slot = FAULTS[(round + SEED) % FAULTS.length] as FaultKind;
      const pick = ids[rng.int(0, ids.length - 1)] as string;
      const byMessage = rng.next() < 0.7;
      const messageIndex = rng.int(1, 28);
      const jitterMs = rng.int(0, 40);
      const delayMs = rng.int(0, 1500);
      let fault: Fault;
      if (slot === "kill")
        fault =
          Math.floor((round + SEED) / FAULTS.length) % 2 === 0
            ? { kind: "kill-broker" }
            : { kind: "kill-gateway", id: pick };
      else if (slot === "stop") fault = { kind: "stop", id: pick };
      else {
        const others = ids.filter((id) => id !== pick);
        const first = rng.int(0, others.length - 1);
        const targets = Array.from(
          { length: rng.int(1, others.length) },
          (_, k) => others[(first + k) % others.length] as string,
        );
        fault = {
          kind: "flood",
          from: pick,
          targets,
          messages: rng.int(...FLOOD_MESSAGES),
          durationMs: rng.int(...FLOOD_MS),
        };
      }
      const restartMs =
        fault.kind === "kill-broker" ? rng.int(300, 3000) : rng.int(MIN_RESTART_MS, MIN_RESTART_MS + 4000);
      const faultName = describeFault(fault);
      faults[fault.kind]++;
      // The fault's point in the push. A flood starts early enough to span the exchange (the whole
      // two-phase commit takes well under a second here): at most at the first PREPARE, or 0–0.5 s in.
      const atMessage = fault.kind === "flood" ? 1 + ((messageIndex - 1) % 9) : messageIndex;
      const atDelayMs = fault.kind === "flood" ? delayMs % 500 : delayMs;

      // A flood's client connects ahead (so the flood starts at its point); its targets' counters before it.
      const floodConn =
        fault.kind === "flood" ? await floodClient(url, `chaos-flood-${process.pid}-${round}`) : null;
      const floodTargets = fault.kind === "flood" ? fault.targets : [];
      const counters = async () =>
        new Map(
          await Promise.all(
            floodTargets.map(async (id) => {
              const http = httpOf(id);
              return [
                id,
                {
                  dropped: await metricSum(http, "greenwave_inbound_dropped_total", { class: "corridor" }),
                  missedTicks: await metricSum(http, "greenwave_ticks_missed_total"),
                  trips: (await readModuleState(control.get(id) as string)).watchdog.trips,
                },
              ] as const;
            }),
          ),
        );
      const beforeFlood = await counters();

      // --- the push, and the fault at its random point ---
      wire = [];
      const push = fleet.start(`plan push ${round}`, [
        "plan",
        "push",
        "--corridor",
        fixture.corridor,
        "--plan",
        join(fixture.plans, `${planId}.yaml`),
        "--broker",
        url,
        "--as",
        COORDINATOR,
        "--data-dir",
        coordinatorDir,
        "--lead-s",
        "3",
        "--ack-timeout-s",
        "10",
        "--json",
      ]);
      /** The coordinator's transaction in progress, as the wire shows it: what the flood asks about. */
      const current = () => {
        const prepare = wire.findLast((m) => m.type === "prepare" && m.txnId !== null);
        if (!prepare?.txnId) return null;
        const decided = wire.findLast((m) => m.type === "decision" && m.txnId === prepare.txnId);
        return { txnId: prepare.txnId, outcome: decided?.outcome ?? null };
      };
      let flooding: Promise<FloodReport> | null = null;
      const faultPoint = await new Promise<string>((done) => {
        let fired = false;
        const timers: NodeJS.Timeout[] = [];
        const fire = (what: string) => {
          if (fired) return;
          fired = true;
          onWire = null;
          for (const t of timers) clearTimeout(t);
          if (fault.kind === "kill-broker") fleet.kill9(broker);
          else if (fault.kind === "kill-gateway") fleet.kill9(gateways.get(fault.id) as Spawned);
          else if (fault.kind === "stop") gateways.get(fault.id)?.child.kill("SIGTERM");
          else
            flooding = flood(floodConn as MqttClient, {
              url,
              corridor: CORRIDOR,
              from: fault.from,
              targets: fault.targets,
              messages: fault.messages,
              durationMs: fault.durationMs,
              current,
              tag: `flood-${SEED}-${round}`,
              impersonate: `@${COORDINATOR}`,
            });
          done(what);
        };
        if (!byMessage)
          timers.push(setTimeout(() => fire(`${atDelayMs} ms after the push started`), atDelayMs));
        else {
          onWire = (m) => {
            if (wire.length === atMessage)
              timers.push(
                setTimeout(
                  () =>
                    fire(
                      `${jitterMs} ms after protocol message #${atMessage} (${m.type} ${m.from}->${m.to})`,
                    ),
                  jitterMs,
                ),
              );
          };
          timers.push(
            setTimeout(
              () => fire(`2500 ms after the push started: only ${wire.length} protocol messages`),
              2500,
            ),
          );
        }
      });
      const faultAt = Date.now();
      const seenAtFault = wire.map((m) => `${m.type}:${m.from}->${m.to}`).join(" ");
      note(`round ${round}: push ${planId}; ${faultName} ${faultPoint}; wire before: ${seenAtFault}`);
      // What a killed or stopped gateway had made durable (a stopped one: once it has exited).
      let atFault: StoreView | null =
        fault.kind === "kill-gateway" ? readGatewayStore(storeFile(fault.id)) : null;
      /** What the round's fault did, for the round's line. */
      let faultResult = "";

      if (fault.kind === "kill-broker") {
        await sleep(restartMs);
        broker = await startBroker(`broker (restarted, round ${round})`);
        note(`round ${round}: the broker started again after ${restartMs} ms`);
      } else if (fault.kind === "kill-gateway") {
        await sleep(restartMs);
        gateways.set(fault.id, fleet.start(`gateway ${fault.id} (restarted)`, gatewayArgs(fault.id)));
        outages.get(fault.id)?.push({ goneAt: faultAt, restartedAt: Date.now() });
        note(`round ${round}: gateway ${fault.id} started again after ${restartMs} ms`);
      } else if (fault.kind === "stop") {
        // --- a clean stop: exit 0, "clean", within its bound, every clearance complete on the lamps ---
        const stopped = gateways.get(fault.id) as Spawned;
        const boundMs = Number(
          stopped.lines.find((l) => typeof l.cleanStopBoundMs === "number")?.cleanStopBoundMs,
        );
        expect(boundMs, why(`round ${round}: ${fault.id} logged no clean-stop bound`)).toBeGreaterThan(0);
        const exit = await Promise.race([stopped.exited, sleep(boundMs + 15_000).then(() => null)]);
        const exitAt = Date.now();
        if (exit === null)
          throw new Error(
            why(
              `round ${round}: ${fault.id} had not exited ${boundMs + 15_000} ms after SIGTERM: ${stopped.out.slice(-3000)}`,
            ),
          );
        // Its last lines may come after the exit event: wait for them a moment.
        const said = await untilAsync(`round ${round}: ${fault.id}'s "gateway stopped"`, 2000, async () =>
          stopped.lines.find((l) => l.msg === "gateway stopped"),
        ).catch(() => undefined);
        const allRed = stopped.lines.find((l) => String(l.msg).startsWith("all-red reached"));
        atFault = readGatewayStore(storeFile(fault.id));
        const handedOver = atFault.events.findLast(
          (e) => e.type === "gateway-stopped" && e.at_wall_ms >= faultAt,
        );
        const stop: CleanStop = {
          signalAt: faultAt,
          allRedAt: allRed ? Date.parse(String(allRed.time)) : null,
          handedOverAt: handedOver?.at_wall_ms ?? exitAt,
        };
        const saidAt = said ? Date.parse(String(said.time)) - faultAt : null;
        faultResult = `exit ${exit.code ?? exit.signal} "${String(said?.outcome)}" after ${exitAt - faultAt} ms (bound ${boundMs} ms; all-red after ${stop.allRedAt === null ? "-" : stop.allRedAt - faultAt} ms, safe state after ${stop.handedOverAt - faultAt} ms, "gateway stopped" logged after ${saidAt ?? "-"} ms)`;
        note(
          `round ${round}: ${fault.id} ${faultResult}; store: ${JSON.stringify(handedOver?.detail ?? null)}`,
        );
        expect(
          exit.code,
          why(`round ${round}: ${fault.id}'s exit after a clean stop: ${stopped.out.slice(-3000)}`),
        ).toBe(0);
        expect(
          said?.outcome,
          why(`round ${round}: ${fault.id}'s stop outcome: ${stopped.out.slice(-3000)}`),
        ).toBe("clean");
        expect(
          exitAt - faultAt,
          why(`round ${round}: ${fault.id} took longer than its clean-stop bound (${boundMs} ms) to exit`),
        ).toBeLessThanOrEqual(boundMs + STOP_EXIT_MARGIN_MS);
        // A stopping gateway votes no: nothing prepared after its mode turned "stopping".
        const stoppingAt = atFault.events.find(
          (e) => e.type === "mode" && e.detail.mode === "stopping" && e.at_wall_ms >= faultAt,
        )?.at_wall_ms;
        const timeline = atFault.events
          .filter((e) => e.at_wall_ms >= faultAt - 500 && (e.type === "mode" || e.type.startsWith("txn-")))
          .map(
            (e) =>
              `${e.type}${e.type === "mode" ? `=${String(e.detail.mode)}` : ""}@${e.at_wall_ms - faultAt}`,
          )
          .join(" ");
        note(`round ${round}: ${fault.id}'s audit trail from the signal on (ms after it): ${timeline}`);
        expect(
          atFault.events
            .filter((e) => e.type === "txn-prepared" && stoppingAt !== undefined && e.at_wall_ms > stoppingAt)
            .map((e) => e.detail),
          why(`round ${round}: ${fault.id} prepared (voted yes) while stopping`),
        ).toEqual([]);
        const response = await fetch(`${control.get(fault.id)}/history`);
        const { entries } = (await response.json()) as { entries: HistoryEntry[] };
        expect(
          stopViolations(FIXTURE_LAYOUT, entries, stop, TOLERANCE_MS),
          why(`round ${round}: ${fault.id}'s clean stop broke a rule on the lamps`),
        ).toEqual([]);
        await sleep(restartMs);
        gateways.set(fault.id, fleet.start(`gateway ${fault.id} (restarted)`, gatewayArgs(fault.id)));
        outages.get(fault.id)?.push({ goneAt: stop.handedOverAt, restartedAt: Date.now() });
        note(`round ${round}: gateway ${fault.id} started again ${restartMs} ms after its exit`);
      } else {
        // --- a flood: sent in full, and the targets kept their lamps, counted their drops ---
        const report = await (flooding as unknown as Promise<FloodReport>);
        const afterFlood = await counters();
        const per = fault.targets.map((id) => {
          const b = beforeFlood.get(id);
          const a = afterFlood.get(id);
          return {
            id,
            dropped: (a?.dropped ?? NaN) - (b?.dropped ?? NaN),
            missedTicks: (a?.missedTicks ?? NaN) - (b?.missedTicks ?? NaN),
            trips: (a?.trips ?? NaN) - (b?.trips ?? NaN),
          };
        });
        faultResult =
          `sent ${report.sent} in ${report.ms.toFixed(0)} ms (${Object.entries(report.kinds)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")}; ${report.aboutCurrent} about ${current()?.txnId ?? "no transaction"}; ` +
          `errors ${report.errors}, unconfirmed ${report.unconfirmed}); ` +
          per
            .map(
              (p) =>
                `${p.id}: dropped ${p.dropped}, ticks missed ${p.missedTicks}, watchdog trips ${p.trips}`,
            )
            .join("; ");
        note(`round ${round}: flood ${faultResult}`);
        expect(report.errors, why(`round ${round}: the flood's publishes failed`)).toBe(0);
        for (const p of per) {
          expect(p.trips, why(`round ${round}: ${p.id}'s module watchdog tripped during the flood`)).toBe(0);
          expect(
            p.dropped,
            why(`round ${round}: ${p.id} counted no dropped corridor message`),
          ).toBeGreaterThan(0);
        }
      }

      const exit = await Promise.race([push.exited, sleep(PUSH_BOUND_MS).then(() => null)]);
      if (exit === null) {
        fleet.kill9(push);
        counts.pushesKilled++;
        note(`round ${round}: the push did not finish in ${PUSH_BOUND_MS} ms: killed (its log stays)`);
      }
      let pushed: PushJson | null = null;
      const jsonStart = push.out.indexOf("{\n");
      if (exit?.code === 0 || exit?.code === 1) {
        try {
          pushed = JSON.parse(push.out.slice(jsonStart)) as PushJson;
        } catch {
          pushed = null;
        }
      }
      note(
        `round ${round}: push exit ${exit ? `${exit.code ?? exit.signal}` : "killed"}: ${
          pushed
            ? `${pushed.outcome} ${pushed.txnId} at ${pushed.activationAt}, votes ${pushed.votes.map((v) => `${v.intersection}=${v.vote}`).join(" ")}, unacknowledged [${pushed.unacknowledged.join(" ")}]`
            : push.out.trim().slice(0, 300)
        }`,
      );

      // --- settle: nobody in doubt; if the protocol alone cannot end it, the coordinator recovers ---
      const inDoubt = () =>
        [...stores().entries()].flatMap(([id, s]) =>
          s.txns.filter((t) => t.phase === "prepared").map((t) => `${id}:${t.txn_id}`),
        );
      try {
        await until(`round ${round}: nobody in doubt`, SETTLE_MS, () => inDoubt().length === 0);
      } catch {
        counts.recoveries++;
        note(
          `round ${round}: still in doubt after ${SETTLE_MS} ms: ${inDoubt().join(" ")}; the coordinator recovers`,
        );
        const recovery = fleet.script(`recovery ${round}`, RECOVERY_SCRIPT, [
          url,
          COORDINATOR,
          fixture.corridor,
          coordinatorDir,
          "45000",
        ]);
        try {
          await until(`round ${round}: nobody in doubt after the coordinator's recovery`, 50_000, () =>
            inDoubt().length === 0 ? true : null,
          );
        } catch (error) {
          throw new Error(why(`${(error as Error).message}: ${inDoubt().join(" ")}\n${recovery.out}`));
        } finally {
          recovery.child.kill("SIGINT");
        }
      }

      // --- atomicity: every participant committed, or none did; the coordinator's log agrees ---
      const after = stores();
      const decisions = readCoordinatorLog(coordinatorLog);
      // A flood's inquiries about unknown transactions leave tombstones (a participant that has not
      // voted aborts, durably, before it answers): aborted, and nothing else; not the round's transaction.
      const floodTag = `flood-${SEED}-${round}`;
      const floodRows = [...after.entries()].flatMap(([id, s]) =>
        s.txns
          .filter((t) => t.txn_id.startsWith(floodTag))
          .map((t) => ({ id, txn: t.txn_id, phase: t.phase })),
      );
      expect(
        floodRows.filter((r) => r.phase !== "aborted"),
        why(`round ${round}: the flood's unknown transactions left records other than aborted tombstones`),
      ).toEqual([]);
      if (floodRows.length > 0)
        note(
          `round ${round}: the flood's unknown transactions left ${floodRows.length} aborted tombstones (${ids
            .map((id) => `${id} ${floodRows.filter((r) => r.id === id).length}`)
            .join(", ")})`,
        );
      const fresh = [
        ...new Set([
          ...[...after.values()].flatMap((s) => s.txns.map((t) => t.txn_id)),
          ...decisions.map((d) => d.txn_id),
        ]),
      ].filter((t) => !known.has(t) && !t.startsWith(floodTag));
      const describeTxn = (txnId: string | null) =>
        [...after.entries()]
          .map(([id, s]) => {
            const row = s.txns.find((t) => t.txn_id === txnId);
            return `${id}: ${row ? `${row.phase} (token ${row.token}, at ${row.updated_at_ms})` : "no record"}, in force ${s.planInForce?.planId}`;
          })
          .join("; ") +
        `; coordinator log: ${JSON.stringify(decisions.find((d) => d.txn_id === txnId) ?? null)}`;
      expect(
        fresh.length,
        why(`round ${round}: more than one new transaction: ${fresh.join(", ")}`),
      ).toBeLessThanOrEqual(1);
      const txnId = pushed?.txnId ?? fresh[0] ?? null;
      if (pushed && fresh.length === 1)
        expect(fresh[0], why(`round ${round}: a stranger transaction`)).toBe(txnId);
      const phases = ids.map((id) => after.get(id)?.txns.find((t) => t.txn_id === txnId)?.phase ?? "none");
      const decision: DecisionRow | undefined = decisions.find((d) => d.txn_id === txnId);
      const committed = phases.filter((p) => p === "committed").length;
      note(`round ${round}: settled: ${describeTxn(txnId)}`);
      expect(phases, why(`round ${round}: someone is still in doubt about ${txnId}`)).not.toContain(
        "prepared",
      );
      expect(
        [0, ids.length],
        why(`round ${round}: the corridor is split on ${txnId}: ${describeTxn(txnId)}`),
      ).toContain(committed);
      const outcome = committed === ids.length ? "committed" : "aborted";
      expect(
        decision?.outcome === "committed",
        why(`round ${round}: the coordinator's log and the participants disagree: ${describeTxn(txnId)}`),
      ).toBe(outcome === "committed");
      if (pushed)
        expect(
          pushed.outcome,
          why(`round ${round}: plan push reported ${pushed.outcome}, the stores say ${outcome}`),
        ).toBe(outcome);

      // --- durability: a killed or stopped gateway comes back with what it had made durable ---
      if ((fault.kind === "kill-gateway" || fault.kind === "stop") && atFault) {
        const { id } = fault;
        const durable = atFault;
        await until(`round ${round}: ${id} started again`, 20_000, () =>
          readGatewayStore(storeFile(id)).events.find(
            (e) => e.type === "gateway-started" && e.at_wall_ms >= faultAt,
          ),
        );
        const restarted = readGatewayStore(storeFile(id)).events.find(
          (e) => e.type === "gateway-started" && e.at_wall_ms >= faultAt,
        );
        expect(
          (restarted?.detail.plan as { id?: string } | undefined)?.id,
          why(`round ${round}: ${id} restarted with another plan than the one in force in its store`),
        ).toBe(durable.planInForce?.planId);
        const phaseAtFault = durable.txns.find((t) => t.txn_id === txnId)?.phase ?? "none";
        const when = fault.kind === "stop" ? "its exit" : "the kill";
        if (phaseAtFault === "committed")
          expect(outcome, why(`round ${round}: ${id} had committed ${txnId} before ${when}`)).toBe(
            "committed",
          );
        note(`round ${round}: ${id} had ${phaseAtFault} at ${when}, in force ${durable.planInForce?.planId}`);
      }
      if (fault.kind === "flood")
        for (const id of fault.targets) {
          const latch = readGatewayStore(storeFile(id)).latch;
          expect(
            latch,
            why(`round ${round}: ${id} latched a fault after the flood: ${JSON.stringify(latch)}`),
          ).toBeNull();
          expect(
            gateways.get(id)?.lines.find((l) => String(l.msg).startsWith("FAULT latched")),
            why(`round ${round}: ${id} logged a latched fault after the flood`),
          ).toBeUndefined();
        }

      // --- the plan: the committed one everywhere from its instant on, or the old one still everywhere ---
      const activation =
        (pushed ? Date.parse(pushed.activationAt) : null) ??
        decision?.activation_wall_ms ??
        [...after.values()].flatMap((s) => s.txns).find((t) => t.txn_id === txnId && t.activation_wall_ms > 0)
          ?.activation_wall_ms ??
        null;
      if (outcome === "committed") {
        counts.committed++;
        expect(activation, why(`round ${round}: committed without an activation instant`)).not.toBeNull();
        const t = activation as number;
        expect(t % CYCLE_MS, why(`round ${round}: activation off a common cycle boundary`)).toBe(0);
        await until(
          `round ${round}: ${planId} in force everywhere`,
          Math.max(0, t - Date.now()) + 2 * CYCLE_MS + 20_000,
          // The plan in force and its plan-activated event are two writes: wait for both.
          () =>
            [...stores().values()].every(
              (s) =>
                s.planInForce?.planId === planId &&
                s.events.some(
                  (e) =>
                    e.type === "plan-activated" && e.detail.planId === planId && e.at_wall_ms >= roundStart,
                ),
            ),
        ).catch((error: Error) => {
          throw new Error(why(`${error.message}: ${describeTxn(txnId)}`));
        });
        for (const [id, s] of stores()) {
          const activated = s.events.find(
            (e) => e.type === "plan-activated" && e.detail.planId === planId && e.at_wall_ms >= roundStart,
          );
          expect(
            activated,
            why(`round ${round}: ${id} has no plan-activated event for ${planId}`),
          ).toBeDefined();
          const at = activated?.at_wall_ms ?? 0;
          expect(
            at,
            why(`round ${round}: ${id} switched to ${planId} before the agreed instant`),
          ).toBeGreaterThanOrEqual(t - TOLERANCE_MS);
          // The switch is at the first boundary of the intersection's own cycle at or after the instant
          // (in step, that is the instant plus its offset; while correcting, a cycle may last 20 % more):
          // no boundary of the old plan may pass after the instant once the commit was known — the
          // decision for a boundary is taken when the cycle's last stage starts, at most 20 s before it.
          const committedAt = s.txns.find((x) => x.txn_id === txnId)?.updated_at_ms ?? Infinity;
          const missed = cycleStarts(gateways.get(id) as Spawned).filter(
            (c) =>
              c.planId === previousPlan &&
              c.at >= t + IN_STEP_TOLERANCE_MS + 200 &&
              c.at < at - TOLERANCE_MS &&
              c.at - 21_000 > committedAt,
          );
          expect(
            missed.map((c) => new Date(c.at).toISOString()),
            why(
              `round ${round}: ${id} kept ${previousPlan} past a boundary after ${new Date(t).toISOString()} though it had committed at ${committedAt}`,
            ),
          ).toEqual([]);
        }
      } else {
        if (txnId === null || phases.every((p) => p === "none")) counts.neverPrepared++;
        counts.aborted++;
        // Nobody may switch at the instant of an aborted change: look past it.
        if (activation !== null && activation > Date.now() - 2000)
          await sleep(activation + 2000 - Date.now());
        for (const [id, s] of stores()) {
          expect(
            s.planInForce?.planId,
            why(`round ${round}: ${id} left ${previousPlan} though ${txnId} aborted`),
          ).toBe(previousPlan);
          const switched = s.events.find(
            (e) =>
              (e.type === "plan-activated" || e.type === "plan-scheduled") &&
              e.detail.planId === planId &&
              e.at_wall_ms >= roundStart,
          );
          expect(
            switched,
            why(`round ${round}: ${id} scheduled or activated ${planId} of an aborted change`),
          ).toBeUndefined();
        }
      }
      note(`round ${round}: ${outcome}`);
      console.log(
        `chaos seed ${SEED} round ${round}: ${faultName} ${faultPoint}${faultResult ? `: ${faultResult}` : ""} -> ${outcome} (${txnId}; round took ${((Date.now() - roundStart) / 1000).toFixed(0)} s)`,
      );

      // The operator's view agrees with the stores, once the gateways' status is back on the broker.
      const expected = outcome === "committed" ? planId : previousPlan;
      await until(`round ${round}: status shows ${expected} everywhere`, 30_000, () => {
        const s = status();
        lastStatus = s;
        return s?.intersections.every((i) => i.plan?.id === expected && i.online) ? s : null;
      }).catch((error: Error) => {
        throw new Error(why(`${error.message}: ${JSON.stringify(lastStatus)}`));
      });
    }

    // --- durability once more: every gateway killed at once, and started again ---
    const beforeCrash = stores();
    const crashAt = Date.now();
    for (const id of ids) fleet.kill9(gateways.get(id) as Spawned);
    await sleep(MIN_RESTART_MS);
    for (const id of ids) {
      gateways.set(id, fleet.start(`gateway ${id} (after the corridor crash)`, gatewayArgs(id)));
      outages.get(id)?.push({ goneAt: crashAt, restartedAt: Date.now() });
    }
    note(`all gateways killed at once, started again after ${MIN_RESTART_MS} ms`);
    await until("every gateway running again", 30_000, () =>
      [...stores().values()].every((s) =>
        s.events.some((e) => e.type === "mode" && e.at_wall_ms > crashAt && e.detail.mode !== "startup"),
      ),
    );
    for (const [id, s] of stores()) {
      const started = s.events.find((e) => e.type === "gateway-started" && e.at_wall_ms >= crashAt);
      const was = beforeCrash.get(id)?.planInForce?.planId;
      expect(
        (started?.detail.plan as { id?: string } | undefined)?.id,
        why(`${id} restarted without its plan`),
      ).toBe(was);
      expect(s.planInForce?.planId, why(`${id} lost its plan in force`)).toBe(was);
    }

    // --- resume: each gateway killed in the middle of a green it runs in step, started again at once ---
    const resumes = await Promise.all(
      ids.map(async (id) => {
        const ctl = control.get(id) as string;
        const greenFrom = await untilAsync(`${id} in step, M green with its walk`, 4 * CYCLE_MS, async () => {
          const mode = readGatewayStore(storeFile(id)).events.findLast((e) => e.type === "mode");
          if (mode?.detail.mode !== "coordinated") return null;
          const { entries } = (await (await fetch(`${ctl}/history`)).json()) as { entries: HistoryEntry[] };
          const last = entries.at(-1);
          const on = (ch: number) => last?.outputs[ch] === "1";
          const M = FIXTURE_LAYOUT.vehicles.M as VehicleChannels;
          const S = FIXTURE_LAYOUT.vehicles.S as VehicleChannels;
          const PS = FIXTURE_LAYOUT.pedestrians.PS as PedestrianChannels;
          if (!last || !on(M.green) || !on(S.red) || !on(PS.walk)) return null;
          // Since when M has been green: the first entry of the run that ends with the last one.
          let from = last.t;
          for (
            let k = entries.length - 1;
            k >= 0 && (entries[k] as HistoryEntry).outputs[M.green] === "1";
            k--
          )
            from = (entries[k] as HistoryEntry).t;
          const shown = Date.now() - from;
          // In step: the green began with a cycle on its offset (main is the first stage), not in a stage
          // a start-up entered late and stretched, where the clock does not put it.
          const inStep = (gateways.get(id) as Spawned).lines.some(
            (l) =>
              l.msg === "cycle-start" &&
              Math.abs(Date.parse(String(l.time)) - from) <= TOLERANCE_MS &&
              Math.abs((l.event as { offsetErrorMs: number }).offsetErrorMs) <= IN_STEP_TOLERANCE_MS,
          );
          return inStep && shown >= 300 && shown <= 2500 ? from : null;
        }).catch((error: Error) => {
          throw new Error(why(error.message));
        });
        const killAt = Date.now();
        fleet.kill9(gateways.get(id) as Spawned);
        await sleep(50);
        gateways.set(id, fleet.start(`gateway ${id} (killed in its green)`, gatewayArgs(id)));
        outages.get(id)?.push({ goneAt: killAt, restartedAt: Date.now() });
        const started = await until(`${id} started again after the kill in its green`, 20_000, () =>
          readGatewayStore(storeFile(id)).events.find(
            (e) => e.type === "gateway-started" && e.at_wall_ms >= killAt,
          ),
        );
        const { entries } = (await (await fetch(`${ctl}/history`)).json()) as { entries: HistoryEntry[] };
        const tripped = entries.some(
          (e) => e.cause === "watchdog" && e.t >= killAt && e.t <= started.at_wall_ms,
        );
        note(
          `${id}: killed ${killAt - greenFrom} ms into M's green, started again: ${String(started.detail.how)} (${String(started.detail.reason)})${tripped ? ", its module's watchdog had tripped" : ""}`,
        );
        if (!tripped)
          expect(
            started.detail.how,
            why(
              `${id}: killed in its green in step and restarted within the watchdog, but not resumed: ${String(started.detail.reason)}`,
            ),
          ).toBe("resumed");
        return { id, killAt, greenFrom, resumed: started.detail.how === "resumed" };
      }),
    );
    // The resumed ones ran on: give them a stage change to show it.
    await sleep(CYCLE_MS / 2);

    // --- safety, from what the lamps did during the whole run ---
    await sleep(1000);
    const end = Date.now();
    const finalStores = stores();
    for (const id of ids) {
      const s = finalStores.get(id) as StoreView;
      expect(s.latch, why(`${id} latched a fault: ${JSON.stringify(s.latch)}`)).toBeNull();
      const response = await fetch(`${control.get(id)}/history`);
      const { entries, dropped } = (await response.json()) as { entries: HistoryEntry[]; dropped: number };
      expect(dropped).toBe(0);
      // A kill whose restart took the lamps over (resumed: any kill, in a round, in the corridor crash or
      // in a green) gets no outage: the lamps ran on normally across it.
      const startAfter = (t: number) =>
        s.events.find((e) => e.type === "gateway-started" && e.at_wall_ms >= t);
      const resumedKills = (outages.get(id) ?? []).filter(
        (g) => startAfter(g.goneAt)?.detail.how === "resumed",
      );
      const windows = normalWindows(
        s.events,
        end,
        (outages.get(id) ?? []).filter((g) => !resumedKills.includes(g)).map((g) => g.goneAt),
        resumedKills.map((g) => g.goneAt),
      );
      expect(windows.length, why(`${id} never ran normally`)).toBeGreaterThan(0);
      const problems = lampViolations(FIXTURE_LAYOUT, entries, windows, TOLERANCE_MS);
      expect(problems, why(`${id}: the lamps broke a safety rule`)).toEqual([]);
      // Every restart's start-up, and what it showed: a resumed one no flash from the kill on (the
      // oracle above covered it as normal operation), a warm one none between the hand-over and its first go.
      for (const g of outages.get(id) ?? []) {
        const started = s.events.find((e) => e.type === "gateway-started" && e.at_wall_ms >= g.goneAt);
        const how = String(started?.detail.how ?? "none");
        restarts[how] = (restarts[how] ?? 0) + 1;
        if (how !== "warm" || !started) continue;
        const firstGo = entries.find((e) => e.t > started.at_wall_ms && /1/.test(goOutputs(e)));
        const flash = entries.filter((e) => e.t >= g.goneAt && e.t < (firstGo?.t ?? end) && vehicleDarkIn(e));
        expect(
          flash.map((e) => `${e.t} ${e.outputs}`),
          why(`${id}: a warm restart (after ${new Date(g.goneAt).toISOString()}) flashed`),
        ).toEqual([]);
      }
      // The module falls to its safe state when, and only when, its gateway is gone: between a kill (or
      // a clean stop's hand-over) and the new process's start (its first write follows its `gateway-started`).
      const starts = s.events.filter((e) => e.type === "gateway-started").map((e) => e.at_wall_ms);
      const dead = (outages.get(id) ?? []).map((g) => ({
        ...g,
        until: starts.find((t) => t >= g.goneAt) ?? end,
      }));
      const trips = watchdogTrips(entries);
      for (const trip of trips)
        expect(
          dead.some((g) => trip.t >= g.goneAt && trip.t <= g.until + TOLERANCE_MS),
          why(`${id}: the module's watchdog tripped at ${trip.t} while its gateway ran`),
        ).toBe(true);
      for (const g of dead.filter((g) => g.restartedAt - g.goneAt > WATCHDOG_MS + 200))
        expect(
          trips.some((trip) => trip.t >= g.goneAt && trip.t <= g.until + TOLERANCE_MS),
          why(`${id}: no safe state after its gateway was gone at ${g.goneAt}`),
        ).toBe(true);
    }
    for (const p of [broker, ...gateways.values(), ...sims])
      expect(alive(p), why(`${p.name} died on its own: ${p.out.slice(-2000)}`)).toBe(true);
    const resumed = resumes.filter((r) => r.resumed).length;
    console.log(
      `chaos seed ${SEED}: restarts by start-up: ${Object.entries(restarts)
        .map(([how, n]) => `${how} ${n}`)
        .join(", ")}; killed in a green in step: ${resumed} of ${resumes.length} resumed`,
    );

    console.log(`chaos seed ${SEED}: the run\n  ${chaosLog.join("\n  ")}`);
    console.log(
      `chaos seed ${SEED}: ${ROUNDS} rounds, ${counts.committed} committed, ${counts.aborted} aborted (${counts.neverPrepared} never prepared), ` +
        `${counts.recoveries} coordinator recoveries, ${counts.pushesKilled} pushes killed; faults: kill -9 broker ${faults["kill-broker"]}, ` +
        `kill -9 gateway ${faults["kill-gateway"]}, clean stop ${faults.stop}, flood ${faults.flood}`,
    );
  }, 330_000);
});

/** The go lamps of an entry (vehicle greens, walks), as "0"/"1" per group. */
const goOutputs = (e: HistoryEntry) =>
  [
    ...Object.values(FIXTURE_LAYOUT.vehicles).map((c) => e.outputs[c.green]),
    ...Object.values(FIXTURE_LAYOUT.pedestrians).map((c) => e.outputs[c.walk]),
  ].join("");

/** Is a vehicle head dark (no lamp lit): a flash's dark half. */
const vehicleDarkIn = (e: HistoryEntry) =>
  Object.values(FIXTURE_LAYOUT.vehicles).some(
    (c) => e.outputs[c.red] !== "1" && e.outputs[c.yellow] !== "1" && e.outputs[c.green] !== "1",
  );
