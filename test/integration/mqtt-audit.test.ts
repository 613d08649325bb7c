import { spawn } from "node:child_process";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { AUDIT_PAGE_BYTES } from "../../gateway/core/audit-page.js";
import { OperatorClient } from "../../gateway/operator/operator-client.js";
import { startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce, CLI } from "../e2e/cli.js";

/**
 * `greenwave audit --broker`: the CLI, run as a user runs it, asks in-process gateways on an aedes
 * broker with their read-only `audit` command, page by page. Asynchronous: the gateways and the
 * broker answer from this process while the CLI waits.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("node", [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const FILLER = 1200;
/** Wide enough that the byte bound, not the count, cuts pages. */
const PAD = "x".repeat(300);

async function setUp(): Promise<{
  broker: RunningBroker;
  url: string;
  dataDir: string;
  store: () => import("../../gateway/store/store.js").GatewayStore;
  metrics: () => Promise<string>;
}> {
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
  cleanups.push(() => broker.close());
  const nodes = await startCorridorNodes(broker.url, {
    ids: ["elm"],
    beforeStart: (_id, store) =>
      store.atomically(() => {
        for (let i = 0; i < FILLER; i++)
          store.appendEvent(
            { atWallMs: Date.now(), type: "mode", actor: null, detail: { mode: "flash", n: i, pad: PAD } },
            null,
          );
      }),
  });
  cleanups.push(() => nodes.stop());
  const elm = nodes.nodes.get("elm");
  await until("elm online", 5000, () => elm?.mqttConnected);
  return {
    broker,
    url: broker.url,
    dataDir: nodes.dataDir,
    store: () => nodes.stores.get("elm") as NonNullable<ReturnType<typeof nodes.stores.get>>,
    metrics: async () => (await elm?.metrics.registry.metrics()) ?? "",
  };
}

describe("greenwave audit over MQTT", () => {
  beforeAll(buildOnce, 180_000);

  it("prints what the store holds, in bounded pages, without auditing the query", async () => {
    const { url, dataDir, store, metrics } = await setUp();
    const mqtt = await run(["audit", "--intersection", "elm", "--broker", url, "--limit", "1000", "--json"]);
    expect(mqtt.status, mqtt.stderr).toBe(0);
    expect(mqtt.stderr).toContain("older events not shown");
    const events = JSON.parse(mqtt.stdout) as {
      seq: number;
      type: string;
      detail: Record<string, unknown>;
    }[];
    expect(events).toHaveLength(1000);

    // The same events as the store holds in that range, and as the cabinet's reading prints them.
    const first = events[0]?.seq ?? 0;
    const stored = store()
      .events(first - 1, 1000)
      .map((e) => ({
        seq: e.seq,
        at: new Date(e.atWallMs).toISOString(),
        type: e.type,
        actor: e.actor,
        detail: e.detail,
      }));
    expect(events).toEqual(stored);
    const last = events.at(-1)?.seq ?? 0;
    const cabinet = await run([
      "audit",
      "--intersection",
      "elm",
      "--data-dir",
      dataDir,
      "--limit",
      "10000",
      "--json",
    ]);
    expect(cabinet.status, cabinet.stderr).toBe(0);
    const fromStore = (JSON.parse(cabinet.stdout) as { seq: number }[]).filter(
      (e) => e.seq >= first && e.seq <= last,
    );
    expect(fromStore).toEqual(events);

    // A query: counted (several pages), never written to the trail it reads.
    expect(
      store()
        .events(0, 100_000)
        .filter((e) => e.type === "command"),
    ).toEqual([]);
    const pages = Number(
      /greenwave_commands_total\{command="audit",intersection="elm"\} (\d+)/.exec(await metrics())?.[1],
    );
    expect(pages).toBeGreaterThanOrEqual(Math.ceil((1000 * PAD.length) / AUDIT_PAGE_BYTES));

    // The readable lines, from the gateway.
    const text = await run(["audit", "--intersection", "elm", "--broker", url, "--limit", "3"]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout.trim().split("\n")).toHaveLength(3);
    expect(text.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}#\d+ {2}\S+ {2}/);
  }, 60_000);

  it("answers each page within its bounds, and refuses a page too large in one reply", async () => {
    const { url } = await setUp();
    const op = await OperatorClient.connect({ url, timeoutMs: 3000 });
    cleanups.push(() => op.close());
    const reply = await op.command("main-street", "elm", "audit", {
      by: "alice",
      beforeSeq: null,
      sinceWallMs: null,
      limit: 500,
    });
    expect(reply.ok).toBe(true);
    const page = reply.result as { events: unknown[]; next: number };
    expect(page.events.length).toBeGreaterThan(1);
    expect(page.events.length).toBeLessThan(500);
    expect(Buffer.byteLength(JSON.stringify(page.events))).toBeLessThanOrEqual(AUDIT_PAGE_BYTES + 1000);
    expect(page.next).toBeGreaterThan(0);

    const tooMany = await op.command("main-street", "elm", "audit", {
      by: "alice",
      beforeSeq: null,
      sinceWallMs: null,
      limit: 501,
    });
    expect(tooMany).toMatchObject({ ok: false, error: { code: "invalid" } });
    expect(tooMany.error?.message).toContain("limit");
  }, 60_000);

  it("says in one line when no gateway answers for the intersection", async () => {
    const { url } = await setUp();
    const unknown = await run(["audit", "--intersection", "oak", "--broker", url, "--timeout-ms", "1000"]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/^greenwave: no gateway for intersection oak has published its status/);
    expect(unknown.stderr.trim().split("\n")).toHaveLength(1);
  }, 60_000);
});
