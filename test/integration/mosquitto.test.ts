import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OperatorClient } from "../../gateway/operator/operator-client.js";
import type { Reply } from "../../gateway/protocol/messages.js";
import { intersectionTopics } from "../../gateway/protocol/topics.js";
import { type CorridorNodes, startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { hasTool } from "../support/tools.js";

const haveMosquitto = hasTool("mosquitto", "the gateway against Debian's Mosquitto broker");

describe.skipIf(!haveMosquitto)("against Mosquitto, unchanged", () => {
  let broker: ChildProcess;
  let dir: string;
  let url: string;
  let corridor: CorridorNodes;
  let log = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "greenwave-mosquitto-"));
    const port = await freePort();
    url = `mqtt://127.0.0.1:${port}`;
    const config = join(dir, "mosquitto.conf");
    writeFileSync(
      config,
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n`,
    );
    broker = spawn("mosquitto", ["-c", config, "-v"], { stdio: ["ignore", "pipe", "pipe"] });
    broker.stderr?.on("data", (d: Buffer) => {
      log += d.toString();
    });
    broker.stdout?.on("data", (d: Buffer) => {
      log += d.toString();
    });
    await until(
      "mosquitto listening",
      5000,
      () => log.includes("running") || log.includes("Opening ipv4 listen socket"),
    );
    corridor = await startCorridorNodes(url, { ids: ["elm", "oak"] });
    await until("gateways connected", 8000, () => [...corridor.nodes.values()].every((n) => n.mqttConnected));
  }, 20_000);

  afterAll(async () => {
    await corridor?.stop();
    broker?.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("carries retained status and availability, commands and replies, and events", async () => {
    const op = await OperatorClient.connect({ url, timeoutMs: 3000 });
    try {
      const views = await op.survey("main-street", { expect: 2 });
      expect(views.map((v) => [v.intersection, v.availability?.online, v.status?.mode])).toEqual([
        ["elm", true, "startup"],
        ["oak", true, "startup"],
      ]);
      const reply = await op.command("main-street", "oak", "flash", { by: "alice", on: true });
      expect(reply).toMatchObject({ ok: true, command: "flash" });
      await until("oak in scheduled flash", 5000, () => corridor.nodes.get("oak")?.runner.mode === "flash");
      expect(
        corridor.stores
          .get("oak")
          ?.events(0, 100)
          .find((e) => e.type === "command")?.actor,
      ).toBe("alice");
    } finally {
      await op.close();
    }
  }, 20_000);

  it("answers a malformed command with an error reply and keeps running", async () => {
    const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    try {
      const topics = intersectionTopics("main-street", "elm");
      const replies: Reply[] = [];
      client.on("message", (_t, p) => replies.push(JSON.parse(p.toString()) as Reply));
      await client.subscribeAsync(topics.reply, { qos: 1 });
      await client.publishAsync(topics.command("fault-reset"), "{broken", { qos: 1 });
      await until("the error reply", 3000, () => replies.length === 1);
      expect(replies[0]).toMatchObject({ ok: false, error: { code: "not-json" } });
      expect(corridor.nodes.get("elm")?.health().healthy).toBe(true);
    } finally {
      await client.endAsync();
    }
  });

  it("delivers every audited event on the events topic", async () => {
    const elm = corridor.stores.get("elm");
    await until("outbox flushed", 3000, () => elm?.outboxDepth() === 0);
    expect(corridor.nodes.get("elm")?.outboxSent).toBe(elm?.events(0, 1000).length);
  });
});
