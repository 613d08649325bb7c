import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createGatewayMetrics } from "../../gateway/shell/metrics.js";
import { systemClock } from "../../gateway/shell/clock.js";
import { createLogger } from "../../gateway/shell/log.js";
import { intersectionTopics } from "../../gateway/protocol/topics.js";
import { AuditTrail } from "../../gateway/node/audit-trail.js";
import { GatewayBus } from "../../gateway/node/gateway-bus.js";
import type { GatewayParts } from "../../gateway/node/gateway-parts.js";
import { registerSignalAudit } from "../../gateway/node/signal-audit.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { buildOnce } from "../e2e/cli.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-features-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * Makes the store's event inserts fail on demand, inside SQLite itself (a trigger armed from a second
 * connection): a real failure of the real store, not a stand-in.
 */
function armEventFailure(file: string): { arm(on: boolean): void; close(): void } {
  const db = new Database(file);
  db.exec(`CREATE TABLE IF NOT EXISTS test_switch (fail INTEGER NOT NULL);
    INSERT INTO test_switch (fail) VALUES (0);
    CREATE TRIGGER fail_events BEFORE INSERT ON events WHEN (SELECT fail FROM test_switch) = 1
    BEGIN SELECT RAISE(ABORT, 'injected: disk I/O error'); END;`);
  return {
    arm: (on) => db.prepare("UPDATE test_switch SET fail = ?").run(on ? 1 : 0),
    close: () => db.close(),
  };
}

describe("the gateway's features", () => {
  it("a plan taking effect and its audit entry are one transaction: a failed audit write rolls both back", () => {
    const store = GatewayStore.open(tempDir());
    const log = createLogger("test", "silent");
    const bus = new GatewayBus();
    const metrics = createGatewayMetrics("elm", {
      outboxDepth: () => 0,
      outboxDropped: () => 0,
      plan: () => ({ id: "p", version: 1 }),
      stage: () => null,
      offsetErrorMs: () => 0,
      inStep: () => true,
      cycle: () => null,
      detectors: () => [],
      faultLatched: () => false,
      latchDurable: () => true,
      mode: () => "coordinated",
    });
    const topics = intersectionTopics("main-street", "elm");
    const ids = { corridor: "main-street", intersection: "elm" };
    const audit = new AuditTrail(store, systemClock, log, metrics, { ...ids, topics }, () => {});
    const parts = { bus, audit, store, clock: systemClock, log } as unknown as GatewayParts;
    registerSignalAudit(parts);
    const injector = armEventFailure(store.file);
    const activated = (planId: string) =>
      bus.emit("signal", {
        type: "plan-activated",
        planId,
        version: 1,
        txnId: `t-${planId}`,
        activationWallMs: 1_000,
        lateByMs: 0,
      });

    activated("am-peak");
    expect(store.planInForce()?.planId).toBe("am-peak");
    expect(store.events(0, 100).filter((e) => e.type === "plan-activated")).toHaveLength(1);

    injector.arm(true);
    activated("pm-peak"); // degraded (a store failure), never thrown: the lamps keep running
    expect(store.planInForce()?.planId).toBe("am-peak");
    expect(store.events(0, 100).filter((e) => e.type === "plan-activated")).toHaveLength(1);

    injector.arm(false);
    activated("pm-peak");
    expect(store.planInForce()?.planId).toBe("pm-peak");
    expect(
      store
        .events(0, 100)
        .filter((e) => e.type === "plan-activated")
        .map((e) => e.detail.txnId),
    ).toEqual(["t-am-peak", "t-pm-peak"]);
    injector.close();
    audit.close();
    store.close();
  });
});

describe("fail fast on bugs", () => {
  beforeAll(() => buildOnce(), 180_000);

  it("a TypeError in a feature ends the gateway process at once, with one clear line and exit 70", async () => {
    const dist = resolve("dist");
    const dataDir = tempDir();
    // A gateway as `greenwave gateway` runs it (no devices, no broker), with one more feature that has
    // a bug: it reads a property of undefined when the first outputs are written.
    const script = `
      const { loadIntersectionSetup } = await import(${JSON.stringify(`${dist}/gateway/config/load.js`)});
      const { GatewayNode } = await import(${JSON.stringify(`${dist}/gateway/node/gateway-node.js`)});
      const { GatewayStore } = await import(${JSON.stringify(`${dist}/gateway/store/store.js`)});
      const { systemClock } = await import(${JSON.stringify(`${dist}/gateway/shell/clock.js`)});
      const { createLogger } = await import(${JSON.stringify(`${dist}/gateway/shell/log.js`)});
      const { exitOnBug } = await import(${JSON.stringify(`${dist}/gateway/cli/fatal.js`)});
      const setup = loadIntersectionSetup(${JSON.stringify(resolve("config/intersections/elm.yaml"))});
      const noDevices = { ...setup, intersection: { ...setup.intersection, modules: [] } };
      const log = createLogger("greenwave-gateway:elm");
      exitOnBug(log, "the gateway of elm");
      const buggy = (parts) => parts.bus.on("changed", () => { const status = undefined; status.mode.toString(); });
      await GatewayNode.start({
        setup: noDevices, store: GatewayStore.open(${JSON.stringify(dataDir)}), clock: systemClock, log,
        broker: null, http: null, features: [buggy],
      });
    `;
    const child = spawn("node", ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((done) => child.once("exit", (c) => done(c)));
    expect(code, out).toBe(70);
    const fatal = out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .find((l) => l.level === 60);
    expect(fatal?.msg).toMatch(/^internal error \(a bug; please report\): TypeError: /);
    expect(fatal?.msg).toContain("watchdog holds the lamps in its safe state");
  }, 60_000);
});
