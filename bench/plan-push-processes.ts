import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCorridor } from "../gateway/config/load.js";
import { CoordinatorStore } from "../gateway/store/coordinator-store.js";
import { writeCorridorFixture } from "../simulators/fixtures/corridor-fixture.js";
import { startGatewayProcesses, stopChild, untilOnline } from "./gateway-processes.js";
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

export async function measureProcesses(brokerName: string, url: string): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const { n, pushes } of SIZES) {
    const fixture = writeCorridorFixture(n);
    const dataDir = mkdtempSync(join(tmpdir(), "greenwave-bench-procs-"));
    const coordinatorDir = mkdtempSync(join(tmpdir(), "greenwave-bench-procs-coord-"));
    const gateways = startGatewayProcesses(fixture, dataDir, url);
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
      await Promise.all(gateways.map((g) => stopChild(g, "SIGINT")));
      rmSync(fixture.dir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(coordinatorDir, { recursive: true, force: true });
    }
  }
  return results;
}
