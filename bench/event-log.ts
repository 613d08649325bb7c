import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadIntersectionSetup } from "../gateway/config/load.js";
import {
  type HiResRecorderState,
  INITIAL_RECORDER,
  recordHiRes,
} from "../gateway/core/event-log/hires-recorder.js";
import { FlashStatus } from "../gateway/core/event-log/indiana.js";
import Database from "better-sqlite3";
import { DEFAULT_STORE_LIMITS, GatewayStore } from "../gateway/store/store.js";
import { startController, stepController } from "../gateway/core/controller.js";
import type { Aspect } from "../gateway/core/model.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * What the high-resolution event log costs a gateway: the recorder at every tick (oak, the example
 * corridor's busiest intersection, 10 ticks a second), and one batch written to the store on disk
 * (256 rows, as the gateway writes them), with the bytes a row takes. The recorder's cost is set
 * beside the controller's own step, measured in the same loop (the ratio is what to compare).
 */
export function benchEventLog(): BenchResult[] {
  const setup = loadIntersectionSetup("config/intersections/oak.yaml");
  const intersection = setup.intersection.intersection;
  const now = { monoMs: 0, wallMs: Date.UTC(2026, 10, 30, 12) };
  let controllerState = startController(intersection, setup.initialPlan, null, now);
  let aspects: readonly Aspect[] = [];
  let state: HiResRecorderState = INITIAL_RECORDER;
  const recorder: number[] = [];
  const controller: number[] = [];
  let rows = 0;
  for (let tick = 0; tick < 20_000; tick++) {
    now.monoMs += 100;
    now.wallMs += 100;
    let t = process.hrtime.bigint();
    const stepped = stepController(controllerState, { type: "tick" }, now);
    controllerState = stepped.state;
    for (const effect of stepped.effects) if (effect.type === "write-outputs") aspects = effect.aspects;
    controller.push(elapsedMs(t) * 1000);
    t = process.hrtime.bigint();
    const seq = controllerState.seq;
    const step = recordHiRes(
      intersection,
      state,
      {
        aspects,
        intervals: seq.groups.map((g) => g.interval),
        flash: seq.mode === "running" ? FlashStatus.NOT_FLASH : FlashStatus.STARTUP,
        plan: seq.plan,
        sequencing: seq.mode === "running",
        cycles: seq.cycles,
      },
      now.wallMs,
    );
    recorder.push(elapsedMs(t) * 1000);
    state = step.state;
    rows += step.events.length;
  }
  const cycles = (20_000 * 100) / setup.initialPlan.cycleMs;
  const dir = mkdtempSync(join(tmpdir(), "greenwave-bench-hires-"));
  const batches: number[] = [];
  try {
    const store = GatewayStore.open(dir);
    const n = 256;
    store.reserveHiResSeqs(200 * n);
    for (let b = 0; b < 200; b++) {
      const batch = Array.from({ length: n }, (_, k) => ({
        seq: 1 + b * n + k,
        atMs: Date.UTC(2026, 10, 30) + (b * n + k) * 3200,
        code: [1, 7, 8, 9, 10, 11][k % 6] as number,
        param: 2,
      }));
      const t = process.hrtime.bigint();
      store.appendHiRes(batch);
      batches.push(elapsedMs(t));
    }
    store.close();
    const bytesPerRow = statSync(join(dir, "gateway.db")).size / (200 * n);
    const pages = pageOfFullStore(join(dir, "full"));
    const recorded = summarize("event log: recorder at one tick (oak)", "us", recorder);
    const ticked = summarize("event log: the controller's own tick, same loop", "us", controller);
    return [
      {
        ...recorded,
        extra: {
          vsControllerTick: recorded.median / Math.max(ticked.median, 1e-6),
          rowsPerCycle: rows / cycles,
        },
      },
      ticked,
      summarize("event log: a batch of 256 rows to the store (SQLite on disk, unsynced)", "ms", batches, {
        bytesPerRow,
      }),
      summarize(
        `event log: a page of 5,000 rows from a full store (${DEFAULT_STORE_LIMITS.maxHiResEvents} rows), any window (on the lamp loop: /events, the events command)`,
        "ms",
        pages,
      ),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Pages read from a store at its bound, in the windows a reader asks for: none, every row, paging on
 * from the middle, ten seconds an hour ago. Each runs on the gateway's event loop.
 */
function pageOfFullStore(dir: string): number[] {
  GatewayStore.open(dir).close();
  const count = DEFAULT_STORE_LIMITS.maxHiResEvents;
  const db = new Database(join(dir, "gateway.db"));
  db.exec(`WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ${count})
    INSERT INTO hires_events (seq, at_ms, code, param) SELECT k, 1800000000000 + k * 100, 1, 2 FROM n`);
  db.close();
  const store = GatewayStore.open(dir);
  const t0 = 1_800_000_000_000;
  const windows = [
    { sinceWallMs: null, untilWallMs: null, afterSeq: 0 },
    { sinceWallMs: t0 - 1, untilWallMs: Number.MAX_SAFE_INTEGER, afterSeq: 0 },
    { sinceWallMs: null, untilWallMs: null, afterSeq: count / 2 },
    { sinceWallMs: t0 + (count - 36_000) * 100, untilWallMs: t0 + (count - 35_900) * 100, afterSeq: 0 },
  ];
  const samples: number[] = [];
  try {
    for (let round = 0; round < 5; round++)
      for (const w of windows) {
        const t = process.hrtime.bigint();
        store.hiResEvents({ ...w, limit: 5000 });
        samples.push(elapsedMs(t));
      }
  } finally {
    store.close();
  }
  return samples;
}
