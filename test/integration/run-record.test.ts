import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { GatewayNode } from "../../gateway/node/gateway-node.js";
import { runIdentity } from "../../gateway/node/previous-run.js";
import { systemClock } from "../../gateway/shell/clock.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { fixtureFiles, writeFixtureFiles } from "../support/fixture-intersection.js";

/**
 * The record of the last run (store/run-record.ts, node/previous-run.ts) as a real gateway node keeps
 * it, in process, over one store across runs: begun and not stopped at start (what a crash leaves),
 * clean only after a clean stop with no fault latched, and what the next start was told, in its log
 * and its `gateway-started` audit. No module here (the lamps cannot be read back: always the full
 * start-up); the lamps' side of the decision is test/e2e/restart.test.ts.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function fixture() {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-run-record-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const files = fixtureFiles('{ tcp: "127.0.0.1:1502" }');
  files["x1.yaml"] = (files["x1.yaml"] as string).replace(/devices:[\s\S]*$/, "devices: []\n");
  writeFixtureFiles(dir, files);
  return { setup: loadIntersectionSetup(join(dir, "x1.yaml")), dataDir: join(dir, "data") };
}

type Line = { level: number; msg: string; [key: string]: unknown };

async function run(f: ReturnType<typeof fixture>) {
  const store = GatewayStore.open(f.dataDir);
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  const log = createLogger("greenwave-gateway:x1", "info", sink);
  const node = await GatewayNode.start({
    setup: f.setup,
    store,
    clock: systemClock,
    log,
    broker: null,
    http: null,
  });
  const started = store.events(0, 1000).findLast((e) => e.type === "gateway-started");
  return {
    node,
    store,
    lines,
    started,
    async end(how: "clean" | "cut") {
      const outcome = await node.stop(how);
      const record = store.runRecord();
      store.close();
      return { outcome, record };
    },
  };
}

describe("the record of the last run, kept by a gateway node", () => {
  it("is begun at start, clean after a clean stop, and what the next start is told", async () => {
    const f = fixture();
    const first = await run(f);
    expect(first.started?.detail).toMatchObject({ how: "cold", previousRun: "unknown" });
    expect(first.started?.detail.previousRunWhy).toBe("no record of a previous run on this store");
    // Begun and not stopped, with this configuration and plan: what a crash from here would leave.
    const seq = first.node.runner.controller.seq;
    const identity = runIdentity(seq.intersection, f.setup.intersection.modules, [], seq.plan);
    expect(first.store.runRecord()).toMatchObject({ ...identity, cleanStopAtWallMs: null });
    const stopped = await first.end("clean");
    expect(stopped.outcome).toBe("clean");
    expect(stopped.record?.cleanStopAtWallMs).toEqual(expect.any(Number));

    const second = await run(f);
    expect(second.started?.detail).toMatchObject({ previousRun: "stopped-clean", how: "cold" });
    // Without a readback the core is told nothing: the full start-up, and the log says why.
    const said = second.lines.find((l) => l.msg.startsWith("start-up: the full start-up"));
    expect(said?.msg).toContain("could not be read back");
    expect(said?.msg).toContain("the last run stopped cleanly");
    // Cut short (a second stop signal): not clean.
    expect((await second.end("cut")).record?.cleanStopAtWallMs).toBeNull();

    const third = await run(f);
    expect(third.started?.detail.previousRun).toBe("ended-abruptly");
    await third.end("cut");
  });

  it("a run that ended in a latched fault is not recorded as a clean stop", async () => {
    const f = fixture();
    const first = await run(f);
    first.node.dispatch({ type: "device-lost", device: "io1", detail: "test" });
    expect(first.node.latch).not.toBeNull();
    const stopped = await first.end("clean");
    expect(stopped.outcome).toBe("clean");
    expect(stopped.record?.cleanStopAtWallMs).toBeNull();
    const second = await run(f);
    expect(second.started?.detail.previousRun).toBe("ended-abruptly");
    expect(second.started?.detail.fault).not.toBeNull();
    await second.end("cut");
  });
});
