import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { type BrokerUser, hashPassword } from "../../gateway/broker/users.js";
import { OperatorClient } from "../../gateway/operator/operator-client.js";
import type { Reply } from "../../gateway/protocol/messages.js";
import { COMMANDS, intersectionTopics } from "../../gateway/protocol/topics.js";
import { type CorridorNodes, startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";
import { hasTool } from "../support/tools.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function broker(options: Partial<Parameters<typeof startBroker>[0]> = {}): Promise<RunningBroker> {
  const running = await startBroker({ host: "127.0.0.1", port: 0, users: null, ...options });
  cleanups.push(() => running.close());
  return running;
}

async function corridor(
  url: string,
  options: Parameters<typeof startCorridorNodes>[1] = {},
): Promise<CorridorNodes> {
  const nodes = await startCorridorNodes(url, options);
  cleanups.push(() => nodes.stop());
  return nodes;
}

async function operator(url: string, credentials: { username?: string; password?: string } = {}) {
  const client = await OperatorClient.connect({ url, timeoutMs: 3000, ...credentials });
  cleanups.push(() => client.close());
  return client;
}

/** A raw MQTT client for hostile traffic. */
async function rawClient(url: string, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
  cleanups.push(() => client.endAsync(true));
  return client;
}

const TOPICS = intersectionTopics("main-street", "elm");

describe("a gateway on MQTT (aedes on loopback)", () => {
  it("publishes retained availability and status, answers commands, and its last will says when it is gone", async () => {
    const b = await broker();
    const { nodes, stores } = await corridor(b.url, { ids: ["elm"] });
    const elm = nodes.get("elm");
    await until("elm online", 5000, () => elm?.mqttConnected);
    const op = await operator(b.url);
    const [view] = await op.survey("main-street", { expect: 1 });
    expect(view?.availability?.online).toBe(true);
    expect(view?.status).toMatchObject({
      corridor: "main-street",
      intersection: "elm",
      mode: "startup",
      plan: { id: "off-peak", version: 1 },
      fault: null,
      lock: null,
      lastTxn: null,
    });
    const reply = await op.command("main-street", "elm", "status", { by: "alice" });
    expect(reply).toMatchObject({ ok: true, command: "status", result: { status: { intersection: "elm" } } });
    // A status query changes nothing: it is counted, never written to the store (a poller would wear the SD card).
    expect(
      stores
        .get("elm")
        ?.events()
        .filter((e) => e.type === "command"),
    ).toEqual([]);
    expect(await elm?.metrics.registry.metrics()).toMatch(
      /greenwave_commands_total\{command="status",intersection="elm"\} 1/,
    );

    // The connection dies without a DISCONNECT: the broker publishes the will; the gateway comes back.
    const seen: string[] = [];
    const watcher = await rawClient(b.url);
    watcher.on("message", (_topic, payload) =>
      seen.push(JSON.parse(payload.toString()).online ? "online" : "offline"),
    );
    await watcher.subscribeAsync(TOPICS.availability, { qos: 1 });
    await until("retained availability", 2000, () => seen.length === 1);
    const clientId = "greenwave-main-street-elm";
    const brokerClients = (b.aedes as unknown as { clients: Record<string, { conn: { destroy(): void } }> })
      .clients;
    brokerClients[clientId]?.conn.destroy();
    await until("the will, then online again", 8000, () => seen.join(",") === "online,offline,online");
    expect(elm?.mqttCounters?.reconnects).toBeGreaterThanOrEqual(1);
  }, 20_000);

  it("resets a latched fault on an operator's command, audited with who sent it", async () => {
    const b = await broker();
    const latch = { kind: "red-fail" as const, groups: ["M"], message: "M dark for 800 ms", atWallMs: 1 };
    const { nodes, stores } = await corridor(b.url, {
      ids: ["elm"],
      beforeStart: (_id, store) => store.save(latch),
    });
    const elm = nodes.get("elm");
    expect(elm?.runner.mode).toBe("fault");
    await until("elm online", 5000, () => elm?.mqttConnected);
    const op = await operator(b.url);
    const [before] = await op.survey("main-street", { expect: 1 });
    expect(before?.status?.mode).toBe("fault");
    expect(before?.status?.fault).toMatchObject({ kind: "red-fail", message: "M dark for 800 ms" });

    const reply = await op.command("main-street", "elm", "fault-reset", {
      by: "alice",
      reason: "lamp replaced",
    });
    expect(reply).toMatchObject({ ok: true, result: { cleared: { kind: "red-fail" } } });
    expect(elm?.runner.mode).toBe("startup");
    expect(elm?.latch).toBeNull();
    const store = stores.get("elm");
    expect(store?.load()).toBeNull();
    const audit = store?.events(0, 100) ?? [];
    expect(audit.filter((e) => e.type === "command")).toEqual([
      expect.objectContaining({
        actor: "alice",
        detail: expect.objectContaining({ command: "fault-reset", reason: "lamp replaced", ok: true }),
      }),
    ]);
    expect(audit.filter((e) => e.type === "fault-reset")).toEqual([
      expect.objectContaining({ actor: "alice" }),
    ]);
    const [after] = await op.survey("main-street", { expect: 1 });
    expect(after?.status).toMatchObject({ mode: "startup", fault: null });
    // A second reset finds nothing to clear and changes nothing.
    const again = await op.command("main-street", "elm", "fault-reset", { by: "bob" });
    expect(again).toMatchObject({ ok: true, result: { cleared: null } });
    expect(store?.events(0, 100).filter((e) => e.type === "fault-reset")).toHaveLength(1);
  }, 20_000);

  it("answers malformed, oversized and wrongly-typed payloads on every command topic with an error, and changes nothing", async () => {
    const b = await broker();
    const { nodes, stores } = await corridor(b.url, { ids: ["elm"] });
    const elm = nodes.get("elm");
    await until("elm online", 5000, () => elm?.mqttConnected);
    const client = await rawClient(b.url);
    const replies: Reply[] = [];
    client.on("message", (_t, payload) => replies.push(JSON.parse(payload.toString()) as Reply));
    await client.subscribeAsync(TOPICS.reply, { qos: 1 });
    const hostile: { payload: string | Buffer; code: string }[] = [
      { payload: "{not json", code: "not-json" },
      { payload: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), code: "not-json" },
      { payload: "", code: "not-json" },
      // Past every command's limit, plan-push's (a whole plan file) included.
      {
        payload: JSON.stringify({ v: 1, id: "big", by: "alice", pad: "x".repeat(140_000) }),
        code: "too-large",
      },
      { payload: JSON.stringify({ v: 1, id: "typed", by: 7, on: "yes" }), code: "invalid" },
      { payload: JSON.stringify([1, 2, 3]), code: "invalid" },
      { payload: JSON.stringify({ v: 9, id: "future", by: "alice" }), code: "unsupported-version" },
      { payload: "null", code: "invalid" },
    ];
    const topics = [...COMMANDS.map((c) => TOPICS.command(c)), `${TOPICS.commandFilter.slice(0, -1)}reboot`];
    const ticksBefore = (await elm?.metrics.ticks.get())?.values[0]?.value ?? 0;
    let sent = 0;
    for (const topic of topics) {
      // Paced under the gateway's command rate limit (a burst of 64, then 10/s per sender): the limit is
      // not what this test is about (test/unit/inbound-queue.test.ts is).
      if (sent > 0 && sent % 48 === 0) {
        await until("replies so far", 5000, () => replies.length >= sent);
        await new Promise((r) => setTimeout(r, 2500));
      }
      for (const { payload } of hostile) {
        await client.publishAsync(topic, payload, { qos: 1 });
        sent++;
      }
    }
    await until("a reply to every hostile payload", 5000, () => replies.length >= sent);
    expect(replies).toHaveLength(sent);
    expect(replies.every((r) => r.ok === false && typeof r.error?.message === "string")).toBe(true);
    // Each hostile payload got its specific code on the known commands; the unknown command is named.
    for (const [i, topic] of topics.entries()) {
      const codes = replies.slice(i * hostile.length, (i + 1) * hostile.length).map((r) => r.error?.code);
      if (topic.endsWith("/reboot"))
        expect(codes.filter((c) => c === "unknown-command").length).toBeGreaterThanOrEqual(3);
      else expect(codes).toEqual(hostile.map((h) => h.code));
    }
    expect(replies.find((r) => r.error?.code === "unsupported-version")?.id).toBe("future");
    const rejected = (await elm?.metrics.mqttRejected.get())?.values.reduce((sum, v) => sum + v.value, 0);
    expect(rejected).toBe(sent);
    // Nothing changed: still ticking, same mode, no fault, no command carried out.
    expect(elm?.runner.mode).toBe("startup");
    expect(elm?.latch).toBeNull();
    expect((await elm?.metrics.commands.get())?.values ?? []).toEqual([]);
    // The payloads are worked off between ticks (in slices): the ticks went on meanwhile.
    const repliedAt = performance.now();
    await until("a tick after the replies", 2000, () => (elm?.runner.lastTickMono ?? 0) > repliedAt);
    const ticksAfter = (await elm?.metrics.ticks.get())?.values[0]?.value ?? 0;
    expect(ticksAfter).toBeGreaterThan(ticksBefore);
    expect(
      stores
        .get("elm")
        ?.events(0, 1000)
        .filter((e) => e.type === "command-refused"),
    ).toHaveLength(sent);

    // Past the broker's limit a payload is refused at the broker and never reaches the gateway.
    const flooder = await rawClient(b.url);
    flooder.on("error", () => {});
    flooder.publish(TOPICS.command("status"), Buffer.alloc(300 * 1024, 0x20), { qos: 1 });
    await until("the broker refusing the huge payload", 3000, () => b.counters.tooLarge === 1);
    expect(replies).toHaveLength(sent);
  }, 20_000);
});

describe("the broker's users and ACL", () => {
  it("lets only operators command, and confines each gateway to its own topics", async () => {
    const password = "correct horse battery";
    const hash = await hashPassword(password);
    const users = new Map<string, BrokerUser>([
      [
        "gw-elm",
        {
          passwordHash: hash,
          principal: { role: "gateway", username: "gw-elm", corridor: "main-street", intersection: "elm" },
        },
      ],
      [
        "gw-oak",
        {
          passwordHash: hash,
          principal: { role: "gateway", username: "gw-oak", corridor: "main-street", intersection: "oak" },
        },
      ],
      ["alice", { passwordHash: hash, principal: { role: "operator", username: "alice" } }],
    ]);
    const b = await broker({ users });
    const { nodes, stores } = await corridor(b.url, {
      ids: ["elm", "oak"],
      credentials: (id) => ({ username: `gw-${id}`, password }),
    });
    await until("both gateways online", 8000, () => [...nodes.values()].every((n) => n.mqttConnected));
    const elm = nodes.get("elm");

    // A gateway's credentials cannot command any gateway, on any command topic, nor speak for another.
    for (const [i, command] of [...COMMANDS, "reboot"].entries()) {
      const rogue = await rawClient(b.url, { username: "gw-oak", password, clientId: `rogue-oak-cmd-${i}` });
      rogue.on("error", () => {});
      rogue.publish(
        `${TOPICS.commandFilter.slice(0, -1)}${command}`,
        JSON.stringify({ v: 1, id: "x", by: "oak", on: true }),
        { qos: 1 },
      );
      await until(`the ${command} command refused`, 3000, () => b.counters.publishDenied >= i + 1);
    }
    const denied = b.counters.publishDenied;
    const rogueStatus = await rawClient(b.url, { username: "gw-oak", password, clientId: "rogue-oak-2" });
    rogueStatus.on("error", () => {});
    rogueStatus.publish(TOPICS.status, JSON.stringify({ v: 1, mode: "coordinated" }), {
      qos: 1,
      retain: true,
    });
    await until("the fake status refused", 3000, () => b.counters.publishDenied >= denied + 1);
    const wide = await rawClient(b.url, { username: "gw-oak", password, clientId: "rogue-oak-3" });
    await expect(wide.subscribeAsync("greenwave/v1/#", { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(b.counters.subscribeDenied).toBe(1);

    // Unknown users, missing and wrong passwords do not get in.
    await expect(mqtt.connectAsync(b.url, { reconnectPeriod: 0, connectTimeout: 2000 })).rejects.toThrow();
    await expect(
      mqtt.connectAsync(b.url, {
        reconnectPeriod: 0,
        username: "alice",
        password: "wrong",
        connectTimeout: 2000,
      }),
    ).rejects.toThrow();
    expect(b.counters.authFailures).toBe(2);

    // The operator's command goes through; the refused ones changed nothing and left no audit entry.
    const op = await operator(b.url, { username: "alice", password });
    const [status] = (await op.survey("main-street", { expect: 2 })).filter((v) => v.intersection === "elm");
    expect(status?.status?.mode).toBe("startup");
    expect(elm?.runner.mode).toBe("startup");
    expect(
      stores
        .get("elm")
        ?.events(0, 100)
        .filter((e) => e.type.startsWith("command")),
    ).toEqual([]);
    const reply = await op.command("main-street", "elm", "status", { by: "alice" });
    expect(reply.ok).toBe(true);

    // Who sent a command is the broker login on its topic (…/cmd/flash/@alice), not the payload's
    // `by`, which stays as the sender's note.
    const flash = await op.command("main-street", "elm", "flash", { by: "bob at the cabinet", on: true });
    expect(flash.ok).toBe(true);
    const entry = stores
      .get("elm")
      ?.events(0, 1000)
      .find((e) => e.type === "command" && e.detail.command === "flash");
    expect(entry?.actor).toBe("alice");
    expect(entry?.detail).toMatchObject({ identity: "login", note: "bob at the cabinet" });
    // Another operator's name on the topic, or none at all, is refused by the broker.
    const deniedBefore = b.counters.publishDenied;
    for (const [i, topic] of [TOPICS.command("flash", "carol"), TOPICS.command("flash")].entries()) {
      const forger = await rawClient(b.url, { username: "alice", password, clientId: `forger-${i}` });
      forger.on("error", () => {});
      forger.publish(topic, JSON.stringify({ v: 1, id: "f", by: "carol", on: false }), { qos: 1 });
      await until(
        `the forged command on ${topic} refused`,
        3000,
        () => b.counters.publishDenied >= deniedBefore + i + 1,
      );
    }
    expect(elm?.runner.mode).toBe("flash");
  }, 30_000);
});

describe("broker killed and restarted under a running corridor", () => {
  it("keeps the lamps safe, reconnects, republishes, and flushes the outbox: nothing lost, nothing duplicated", async () => {
    // An in-process recorder on each broker instance, subscribed before it accepts connections.
    const received = new Map<string, { seq: number; type: string }[]>();
    const record = async (aedes: RunningBroker["aedes"]) =>
      await new Promise<void>((resolve) =>
        aedes.subscribe(
          "greenwave/v1/+/+/events",
          (packet, done) => {
            const event = JSON.parse(packet.payload.toString()) as {
              intersection: string;
              seq: number;
              type: string;
            };
            const list = received.get(event.intersection) ?? [];
            list.push({ seq: event.seq, type: event.type });
            received.set(event.intersection, list);
            done();
          },
          resolve,
        ),
      );
    const first = await startBroker({ host: "127.0.0.1", port: 0, users: null, beforeListen: record });
    const port = first.port;
    const { nodes, stores } = await corridor(first.url);
    await until("every gateway online", 8000, () => [...nodes.values()].every((n) => n.mqttConnected));
    await until("the start-up events delivered", 5000, () =>
      [...stores.values()].every((s) => s.outboxDepth() === 0),
    );

    await first.close();
    await until("every gateway noticing", 5000, () => [...nodes.values()].every((n) => !n.mqttConnected));
    const ticksAtOutage = new Map<string, number>();
    for (const [id, node] of nodes)
      ticksAtOutage.set(id, (await node.metrics.ticks.get()).values[0]?.value ?? 0);
    // Things happen while the broker is away: a scheduled flash at elm, a lost module at oak.
    nodes.get("elm")?.dispatch({ type: "enter-flash" });
    nodes.get("oak")?.dispatch({ type: "device-lost", device: "io1", detail: "no answer for 1 s" });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const [id, store] of stores)
      if (id === "elm" || id === "oak") expect(store.outboxDepth()).toBeGreaterThan(0);

    const second = await startBroker({ host: "127.0.0.1", port, users: null, beforeListen: record });
    cleanups.push(() => second.close());
    await until("every gateway back, its outbox flushed", 15_000, () =>
      [...nodes.entries()].every(([id, n]) => n.mqttConnected && stores.get(id)?.outboxDepth() === 0),
    );

    for (const [id, node] of nodes) {
      // The signal side never stopped and never faulted for the broker's sake.
      const ticks = (await node.metrics.ticks.get()).values[0]?.value ?? 0;
      expect(ticks - (ticksAtOutage.get(id) ?? 0)).toBeGreaterThan(10);
      expect((await node.metrics.mqttReconnects.get()).values[0]?.value).toBeGreaterThanOrEqual(1);
      if (id !== "oak") expect(node.latch).toBeNull();
      // Every audited event reached the broker exactly once after dropping transport duplicates by seq.
      const audit = stores.get(id)?.events(0, 10_000) ?? [];
      const seen = new Map<number, string>();
      for (const e of received.get(id) ?? []) {
        const earlier = seen.get(e.seq);
        if (earlier !== undefined) expect(earlier).toBe(e.type);
        seen.set(e.seq, e.type);
      }
      expect([...seen.entries()].sort((a, b) => a[0] - b[0])).toEqual(audit.map((e) => [e.seq, e.type]));
      expect(audit.map((e) => e.seq)).toEqual(audit.map((_, i) => (audit[0]?.seq ?? 1) + i));
    }
    expect(
      stores
        .get("oak")
        ?.events(0, 1000)
        .filter((e) => e.type === "fault-latched"),
    ).toHaveLength(1);

    // The new broker knew nothing: the gateways republished their retained availability and status.
    const op = await operator(second.url);
    const views = await op.survey("main-street", { expect: 4 });
    expect(views.map((v) => [v.intersection, v.availability?.online])).toEqual([
      ["elm", true],
      ["oak", true],
      ["pine", true],
      ["cedar", true],
    ]);
    expect(views.find((v) => v.intersection === "oak")?.status).toMatchObject({
      mode: "fault",
      fault: { kind: "device-lost" },
    });
    expect(views.find((v) => v.intersection === "elm")?.status?.mode).toBe("flash");
  }, 45_000);
});

describe.skipIf(!hasTool("openssl", "the broker over TLS (a self-signed certificate is made with openssl)"))(
  "the broker over TLS",
  () => {
    it("carries a gateway's status and an operator's command over mqtts with a private CA", async () => {
      const dir = mkdtempSync(join(tmpdir(), "greenwave-tls-"));
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      const made = spawnSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=127.0.0.1",
          "-addext",
          "subjectAltName=IP:127.0.0.1",
          "-keyout",
          join(dir, "key.pem"),
          "-out",
          join(dir, "cert.pem"),
        ],
        { encoding: "utf8" },
      );
      expect(made.status, made.stderr).toBe(0);
      const cert = readFileSync(join(dir, "cert.pem"));
      const b = await broker({ tls: { cert, key: readFileSync(join(dir, "key.pem")) } });
      expect(b.url).toMatch(/^mqtts:\/\//);
      const nodes = await startCorridorNodes(b.url, { ids: ["elm"], ca: cert });
      cleanups.push(() => nodes.stop());
      await until("elm online over TLS", 8000, () => nodes.nodes.get("elm")?.mqttConnected);
      const op = await OperatorClient.connect({ url: b.url, ca: cert, timeoutMs: 3000 });
      cleanups.push(() => op.close());
      const [view] = await op.survey("main-street", { expect: 1 });
      expect(view?.availability?.online).toBe(true);
      expect((await op.command("main-street", "elm", "status", { by: "alice" })).ok).toBe(true);
      // Without the CA the certificate is not trusted.
      await expect(OperatorClient.connect({ url: b.url, timeoutMs: 2000 })).rejects.toThrow(/cannot connect/);
    }, 20_000);
  },
);
