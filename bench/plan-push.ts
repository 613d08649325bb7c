import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import mqtt from "mqtt";
import { startBroker } from "../gateway/broker/broker.js";
import { loadCorridor, loadPlan } from "../gateway/config/load.js";
import { pushPlan } from "../gateway/operator/plan-push.js";
import { CoordinatorStore } from "../gateway/store/coordinator-store.js";
import { writeCorridorFixture } from "../simulators/fixtures/corridor-fixture.js";
import { startCorridorNodes } from "../simulators/fixtures/mqtt-corridor.js";
import { freePort } from "../simulators/fixtures/ports.js";
import { haveRedis, startNaiveWorld } from "./naive-switch.js";
import { pushRepeatedly } from "./push-samples.js";
import { measureProcesses } from "./plan-push-processes.js";
import { benchSkeleton2pc } from "./skeleton-2pc.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * Commit latency of a corridor plan switch (`plan push`: leases, PREPARE, votes, forced commit,
 * COMMIT, acknowledgements) for 4, 16 and 64 gateways in this process, each with its SQLite store on
 * disk, over the embedded aedes broker and over Mosquitto when it is installed; against the floor on
 * this machine: two broker round trips plus three forced SQLite writes.
 */
const SIZES = [
  { n: 4, pushes: 30 },
  { n: 16, pushes: 20 },
  { n: 64, pushes: 8 },
] as const;

async function floorParts(url: string, dir: string): Promise<{ roundTripMs: number; forcedWriteMs: number }> {
  const a = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  const b = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  for (const c of [a, b]) (c.stream as unknown as { setNoDelay(v: boolean): void }).setNoDelay(true);
  b.on("message", (_t, p) => b.publish("floor/reply", p, { qos: 1 }));
  await b.subscribeAsync("floor/request", { qos: 1 });
  let pending: (() => void) | null = null;
  a.on("message", () => pending?.());
  await a.subscribeAsync("floor/reply", { qos: 1 });
  const trips: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      pending = resolve;
      a.publish("floor/request", "x".repeat(200), { qos: 1 });
    });
    if (i >= 20) trips.push(elapsedMs(t));
  }
  await a.endAsync();
  await b.endAsync();
  const db = new Database(join(dir, "floor.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  const writes: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t = process.hrtime.bigint();
    insert.run("x".repeat(300));
    if (i >= 20) writes.push(elapsedMs(t));
  }
  db.close();
  return { roundTripMs: summarize("", "", trips).median, forcedWriteMs: summarize("", "", writes).median };
}

async function measure(brokerName: string, url: string, naive = false): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const { n, pushes } of SIZES) {
    const fixture = writeCorridorFixture(n);
    const coordinatorDir = mkdtempSync(join(tmpdir(), "greenwave-bench-push-"));
    const corridor = await startCorridorNodes(url, { corridorFile: fixture.corridor });
    const store = CoordinatorStore.open(coordinatorDir);
    try {
      const deadline = performance.now() + 30_000;
      while (
        ![...corridor.nodes.values()].every((node) => node.mqttConnected) &&
        performance.now() < deadline
      )
        await new Promise((r) => setTimeout(r, 50));
      const loadedCorridor = loadCorridor(fixture.corridor);
      const twoPhase = await pushRepeatedly(
        `plan push commit, ${n} gateways, ${brokerName}`,
        url,
        loadedCorridor,
        fixture.plans,
        store,
        pushes,
      );
      results.push(twoPhase);
      if (naive) {
        const world = await startNaiveWorld(url, fixture.corridor, fixture.ids);
        try {
          const naiveSamples: number[] = [];
          for (let i = 0; i < pushes; i++)
            naiveSamples.push(
              (await world.switchOnce(join(fixture.plans, i % 2 === 0 ? "next.yaml" : "base.yaml"))).ms,
            );
          const extra: Record<string, string | number> = {
            ratioTwoPhaseToNaive: Number(
              (twoPhase.median / summarize("", "", naiveSamples).median).toFixed(2),
            ),
          };
          if (n === 16) {
            // One intersection killed mid-switch: what each way leaves behind.
            const split = await world.switchOnce(join(fixture.plans, "next.yaml"), "x5");
            extra.naiveWithX5Killed = `${split.applied}/${n} took the plan: the corridor is split`;
            await corridor.kill("x5");
            const result = await pushPlan({
              url,
              name: "bench",
              corridor: loadedCorridor,
              plan: loadPlan(join(fixture.plans, "base.yaml")),
              atWallMs: null,
              leadMs: 5000,
              store,
              ackTimeoutMs: 5000,
              config: { requestTimeoutMs: 1000, maxAcquireAttempts: 2 },
            });
            const took = [...corridor.stores.values()].filter(
              (st) => st.transaction(result.txnId)?.phase === "committed",
            ).length;
            extra.twoPhaseWithX5Killed = `${result.outcome}: ${took}/${n} took the plan (${result.reason ?? ""})`;
          }
          results.push(
            summarize(
              `naive switch (redis SET NX PX + broadcast), ${n} intersections`,
              "ms",
              naiveSamples,
              extra,
            ),
          );
        } finally {
          await world.stop();
        }
      }
    } finally {
      store.close();
      await corridor.stop();
      rmSync(fixture.dir, { recursive: true, force: true });
      rmSync(coordinatorDir, { recursive: true, force: true });
    }
  }
  return results;
}

async function withMosquitto<T>(run: (url: string) => Promise<T>): Promise<T | null> {
  if (spawnSync("sh", ["-c", "command -v mosquitto"]).status !== 0) return null;
  const dir = mkdtempSync(join(tmpdir(), "greenwave-bench-mosquitto-"));
  const port = await freePort();
  writeFileSync(
    join(dir, "m.conf"),
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\nmax_queued_messages 100000\n`,
  );
  const broker: ChildProcess = spawn("mosquitto", ["-c", join(dir, "m.conf")], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 500));
  try {
    return await run(`mqtt://127.0.0.1:${port}`);
  } finally {
    broker.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same message pattern with none of greenwave's code, at the sizes measured with processes. */
const skeleton = (url: string) => benchSkeleton2pc(url, [1, 4, 16], 20);

/**
 * Each `plan push` over gateway processes beside the skeleton of the same size and broker, with the
 * ratio of the transaction alone (what the skeleton times: first lease request to last acknowledgement).
 */
function withSkeleton(pushes: BenchResult[], skeletons: BenchResult[]): BenchResult[] {
  const out: BenchResult[] = [];
  for (const push of pushes) {
    const n = Number(/(\d+) gateway processes/.exec(push.name)?.[1]);
    const floor = skeletons.find((s) => s.extra?.participants === n);
    const transaction = Number(push.extra?.transactionMedianMs);
    out.push(
      floor
        ? {
            ...push,
            extra: {
              ...push.extra,
              skeletonMedianMs: Number(floor.median.toFixed(2)),
              ratioTransactionToSkeleton: Number((transaction / floor.median).toFixed(2)),
            },
          }
        : push,
    );
  }
  return [...skeletons, ...out];
}

export async function benchPlanPush(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-bench-floor-"));
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
  try {
    const floor = await floorParts(broker.url, dir);
    const floorMs = 2 * floor.roundTripMs + 3 * floor.forcedWriteMs;
    if (!haveRedis())
      process.stdout.write(
        "redis-server not installed: the naive comparison is skipped (apt-get install redis-server)\n",
      );
    const results = await measure("aedes", broker.url, haveRedis());
    results.push(...withSkeleton(await measureProcesses("aedes", broker.url), await skeleton(broker.url)));
    const mosquitto =
      (await withMosquitto(async (url) => [
        ...(await measure("mosquitto", url)),
        ...withSkeleton(await measureProcesses("mosquitto", url), await skeleton(url)),
      ])) ?? [];
    const all = [...results, ...mosquitto].map((r) =>
      r.name.startsWith("naive") || r.name.startsWith("skeleton")
        ? r
        : {
            ...r,
            extra: {
              ...r.extra,
              floorMs: Number(floorMs.toFixed(2)),
              ratioMedianToFloor: Number((r.median / floorMs).toFixed(2)),
            },
          },
    );
    return [
      summarize("floor: 2 broker round trips + 3 forced SQLite writes", "ms", [floorMs], {
        roundTripMs: floor.roundTripMs,
        forcedWriteMs: floor.forcedWriteMs,
      }),
      ...all,
    ];
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
