import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadCorridor } from "../gateway/config/load.js";
import { OperatorClient } from "../gateway/operator/operator-client.js";
import { CoordinatorStore } from "../gateway/store/coordinator-store.js";
import { writeCorridorFixture } from "../test/support/corridor-fixture.js";
import { pushRepeatedly } from "./push-samples.js";
import type { BenchResult } from "./stats.js";

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
      results.push(
        await pushRepeatedly(
          `plan push commit, ${n} gateway processes, ${brokerName}`,
          url,
          loadCorridor(fixture.corridor),
          fixture.plans,
          store,
          pushes,
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
