import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker } from "../gateway/broker/broker.js";
import { loadCorridor, loadPlan } from "../gateway/config/load.js";
import { pushPlan } from "../gateway/operator/plan-push.js";
import { CoordinatorStore } from "../gateway/store/coordinator-store.js";
import { writeCorridorFixture } from "../simulators/fixtures/corridor-fixture.js";
import { startGatewayProcesses, stopChild, untilOnline } from "./gateway-processes.js";

/**
 * Where a `plan push` spends its time: N gateway processes on the embedded broker, a few pushes, and
 * for the last one every message as the broker saw it (time since the push began, sender, topic,
 * body type), then a summary per kind and the CPU the gateways and this process (broker +
 * coordinator) used. A diagnostic, not a benchmark: `node dist/bench/push-timeline.js [N] [PUSHES]`
 * after `npm run build`; GREENWAVE_PROFILE_GATEWAY=x3 also profiles that gateway's process.
 */

const n = Number(process.argv[2] ?? 16);
const pushes = Number(process.argv[3] ?? 5);

/** CPU time (user + system) of a process so far, in ms, from /proc (Linux). */
function cpuMsOf(pid: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function bodyType(payload: Buffer): string {
  try {
    const json = JSON.parse(payload.toString()) as {
      type?: string;
      body?: { type: string; reply?: { type: string } };
    };
    if (json.body) return json.body.reply ? `${json.body.type}:${json.body.reply.type}` : json.body.type;
    return json.type ?? "";
  } catch {
    return "(not JSON)";
  }
}

const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
const fixture = writeCorridorFixture(n);
const dataDir = mkdtempSync(join(tmpdir(), "greenwave-timeline-"));
const coordinatorDir = mkdtempSync(join(tmpdir(), "greenwave-timeline-coord-"));
// That gateway's CPU profile, written to ./cpu-profiles when it stops (node --cpu-prof).
const gateways = startGatewayProcesses(fixture, dataDir, broker.url, (id) =>
  process.env.GREENWAVE_PROFILE_GATEWAY === id ? ["--cpu-prof", "--cpu-prof-dir=cpu-profiles"] : [],
);
const store = CoordinatorStore.open(coordinatorDir);
try {
  await untilOnline(broker.url, "test-corridor", n);

  let log: { atMs: number; sender: string; topic: string; type: string; bytes: number }[] = [];
  let t0 = 0;
  broker.aedes.on("publish", (packet, client) => {
    if (client && log.length < 10_000)
      log.push({
        atMs: performance.now() - t0,
        sender: client.id,
        topic: packet.topic,
        type: bodyType(packet.payload as Buffer),
        bytes: packet.payload.length,
      });
  });
  const corridor = loadCorridor(fixture.corridor);
  const plans = [loadPlan(join(fixture.plans, "next.yaml")), loadPlan(join(fixture.plans, "base.yaml"))];
  for (let i = 0; i < pushes; i++) {
    log = [];
    const gatewaysBefore = gateways.map((g) => cpuMsOf(g.pid as number));
    const selfBefore = process.cpuUsage();
    t0 = performance.now();
    const result = await pushPlan({
      url: broker.url,
      name: "timeline",
      corridor,
      plan: plans[i % 2] as (typeof plans)[number],
      atWallMs: null,
      leadMs: 5000,
      store,
      ackTimeoutMs: 10_000,
      config: { voteTimeoutMs: 10_000, requestTimeoutMs: 5000 },
    });
    const totalMs = performance.now() - t0;
    const self = process.cpuUsage(selfBefore);
    // The gateways' figure is coarse (10 ms ticks) and includes their idle ticking meanwhile.
    const gatewaysMs = gateways.reduce(
      (sum, g, k) => sum + cpuMsOf(g.pid as number) - (gatewaysBefore[k] ?? 0),
      0,
    );
    process.stdout.write(
      `push ${i}: ${result.outcome}, ${totalMs.toFixed(1)} ms in all, transaction ${result.durationMs} ms, ${log.length} messages; CPU: gateways ${gatewaysMs} ms, broker + coordinator ${((self.user + self.system) / 1000).toFixed(1)} ms\n`,
    );
  }
  await new Promise((r) => setTimeout(r, 300)); // the last push's trailing messages
  const short = (topic: string) => topic.replace("greenwave/v1/test-corridor/", "");
  for (const m of log)
    process.stdout.write(
      `  ${m.atMs.toFixed(2).padStart(8)} ms  ${m.sender.padEnd(36)} ${short(m.topic)} ${m.type}\n`,
    );
  const kinds = new Map<string, { count: number; first: number; last: number; bytes: number }>();
  for (const m of log) {
    const kind = `${short(m.topic)
      .replace(/x\d+/g, "X")
      .replace(/decisions\/.*/, "decisions/T")} ${m.type}`;
    const k = kinds.get(kind) ?? { count: 0, first: m.atMs, last: m.atMs, bytes: 0 };
    k.count++;
    k.last = m.atMs;
    k.bytes += m.bytes;
    kinds.set(kind, k);
  }
  for (const [kind, k] of [...kinds].sort((a, b) => a[1].first - b[1].first))
    process.stdout.write(
      `${k.first.toFixed(1).padStart(7)} – ${k.last.toFixed(1).padStart(7)} ms ${String(k.count).padStart(4)} × ${(k.bytes / k.count).toFixed(0).padStart(5)} B  ${kind}\n`,
    );
} finally {
  store.close();
  await Promise.all(gateways.map((g) => stopChild(g, "SIGINT")));
  await broker.close();
  rmSync(fixture.dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(coordinatorDir, { recursive: true, force: true });
}
