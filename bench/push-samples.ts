import { join } from "node:path";
import { type LoadedCorridor, loadPlan } from "../gateway/config/load.js";
import { pushPlan } from "../gateway/operator/plan-push.js";
import type { CoordinatorStore } from "../gateway/store/coordinator-store.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * `pushes` commits in a row, alternating two fixture plans, timed end to end (the command's own
 * connection included); the transaction alone (leases to the last acknowledgement) as an extra.
 */
export async function pushRepeatedly(
  name: string,
  url: string,
  corridor: LoadedCorridor,
  plansDir: string,
  store: CoordinatorStore,
  pushes: number,
): Promise<BenchResult> {
  const samples: number[] = [];
  const transaction: number[] = [];
  let committed = 0;
  for (let i = 0; i < pushes; i++) {
    const t = process.hrtime.bigint();
    const result = await pushPlan({
      url,
      name: "bench",
      corridor,
      plan: loadPlan(join(plansDir, i % 2 === 0 ? "next.yaml" : "base.yaml")),
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
      transaction.push(result.durationMs);
    }
  }
  return summarize(name, "ms", samples.length ? samples : [Number.NaN], {
    committed: `${committed}/${pushes}`,
    transactionMedianMs: transaction.length ? summarize("", "", transaction).median : Number.NaN,
  });
}
