import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadCorridor, loadPlan } from "../gateway/config/load.js";
import { OperatorClient } from "../gateway/operator/operator-client.js";
import { pushPlan } from "../gateway/operator/plan-push.js";
import { CoordinatorStore } from "../gateway/store/coordinator-store.js";
import { writeCorridorFixture } from "../test/support/corridor-fixture.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * The same commit latency with one `greenwave gateway` process per intersection, as in the field
 * (one gateway per cabinet): each participant's forced writes and checks run on its own event loop
 * instead of queueing behind the others'. On this 2-core machine the processes still share two cores
 * and one disk, so this is pessimistic too.
 */
const SIZES = [
  { n: 4, pushes: 20 },
  { n: 16, pushes: 20 },
] as const;

const CLI = resolve("dist/gateway/cli/main.js");

async function untilOnline(url: string, corridor: string, n: number): Promise<void> {
  const op = await OperatorClient.connect({ url, timeoutMs: 5000 });
  try {
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline) {
      const views = await op.survey(corridor, { expect: n, quietMs: 200 });
      if (views.filter((v) => v.availability?.online && v.status).length === n) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`the ${n} gateways did not come online within 60 s`);
  } finally {
    await op.close();
  }
}

export async function measureProcesses(brokerName: string, url: string): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const { n, pushes } of SIZES) {
    const fixture = writeCorridorFixture(n);
    const dataDir = mkdtempSync(join(tmpdir(), "greenwave-bench-procs-"));
    const coordinatorDir = mkdtempSync(join(tmpdir(), "greenwave-bench-procs-coord-"));
    const gateways: ChildProcess[] = fixture.ids.map((id) =>
      spawn(
        "node",
        [CLI, "gateway", "--config", join(fixture.dir, `${id}.yaml`), "--data-dir", dataDir, "--broker", url],
        { stdio: "ignore", env: { ...process.env, GREENWAVE_LOG_LEVEL: "warn" } },
      ),
    );
    const store = CoordinatorStore.open(coordinatorDir);
    try {
      await untilOnline(url, "test-corridor", n);
      const corridor = loadCorridor(fixture.corridor);
      const samples: number[] = [];
      /** The transaction alone (leases to last acknowledgement), without the command's own connect and close. */
      const protocol: number[] = [];
      let committed = 0;
      for (let i = 0; i < pushes; i++) {
        const t = process.hrtime.bigint();
        const result = await pushPlan({
          url,
          name: "bench",
          corridor,
          plan: loadPlan(join(fixture.plans, i % 2 === 0 ? "next.yaml" : "base.yaml")),
          atWallMs: null,
          leadMs: 5000,
          store,
          ackTimeoutMs: 10_000,
          config: { voteTimeoutMs: 10_000, requestTimeoutMs: 5000 },
        });
        const ms = elapsedMs(t);
        if (result.outcome === "committed" && result.unacknowledged.length === 0) {
          committed++;
          samples.push(ms);
          protocol.push(result.durationMs);
        }
      }
      results.push(
        summarize(
          `plan push commit, ${n} gateway processes, ${brokerName}`,
          "ms",
          samples.length ? samples : [Number.NaN],
          {
            committed: `${committed}/${pushes}`,
            transactionMedianMs: protocol.length ? summarize("", "", protocol).median : Number.NaN,
          },
        ),
      );
    } finally {
      store.close();
      await Promise.all(
        gateways.map(
          (g) =>
            new Promise<void>((done) => {
              if (g.exitCode !== null) return done();
              g.once("exit", () => done());
              g.kill("SIGINT");
            }),
        ),
      );
      rmSync(fixture.dir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(coordinatorDir, { recursive: true, force: true });
    }
  }
  return results;
}
