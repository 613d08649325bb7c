import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../../gateway/broker/users.js";
import { writeFixture } from "../support/fixture-intersection.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { hasTool } from "../support/tools.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, dirs, start } from "./processes.js";

/**
 * Issue 12, defect 4: a command published with the retain flag was kept by the broker and replayed to
 * the gateway at its next (re)subscription, which put the intersection back into flash on a restart.
 * A command is an act of a person, now: the embedded broker refuses retained publishes on command and
 * inbox topics, and the gateway drops any retained message on them whichever broker kept it.
 */

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

const ROOT = "greenwave/v1/test-corridor";
const FLASH_X1 = `${ROOT}/x1/cmd/flash`;
/** The same command under alice's login, as a broker with users requires of an operator. */
const FLASH_X1_ALICE = `${FLASH_X1}/@alice`;
const INBOX_X1_FROM_X2 = `${ROOT}/x1/inbox/x2`;
const REPLY_X1 = `${ROOT}/x1/reply`;
const flashOn = (id: string, by: string) => JSON.stringify({ v: 1, id, by, on: true });

async function connect(
  url: string,
  auth: { username: string; password: string } | null,
): Promise<MqttClient> {
  return await mqtt.connectAsync(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...(auth ?? {}),
  });
}

/** Resolves with what came first for one QoS 1 publish: the broker's acknowledgement, or the connection closed. */
function publishOutcome(
  client: MqttClient,
  topic: string,
  payload: string,
): Promise<"acknowledged" | "closed"> {
  return new Promise((resolve) => {
    client.once("close", () => resolve("closed"));
    client.publish(topic, payload, { qos: 1, retain: true }, (error) => {
      if (!error) resolve("acknowledged");
    });
  });
}

/**
 * Every retained message a fresh subscriber gets under the corridor's tree. The subscriber's own
 * retained marker (a decision record, which may be retained) and then its own live echo come after
 * them: once both are in, nothing retained is still on its way.
 */
async function retainedUnderCorridor(url: string, auth: { username: string; password: string } | null) {
  const client = await connect(url, auth);
  try {
    const markerTopic = `${ROOT}/@${auth?.username ?? "anon"}/decisions/marker`;
    await client.publishAsync(markerTopic, "marker", { qos: 1, retain: true });
    const got: { topic: string; payload: string; retain: boolean }[] = [];
    client.on("message", (topic, payload, packet) =>
      got.push({ topic, payload: payload.toString(), retain: packet.retain }),
    );
    await client.subscribeAsync(`${ROOT}/#`, { qos: 1 });
    await until("the retained marker", 5000, () => got.some((m) => m.topic === markerTopic && m.retain));
    await client.publishAsync(markerTopic, "echo", { qos: 1 });
    await until("the live echo", 5000, () => got.some((m) => m.payload === "echo"));
    return got.filter((m) => m.retain && m.topic !== markerTopic);
  } finally {
    await client.endAsync();
  }
}

describe("a retained command", () => {
  it("is refused by the embedded broker, on command and inbox topics alike, and nothing is kept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-retained-"));
    dirs.push(dir);
    const alice = { username: "alice", password: "alice-secret" };
    const gwX2 = { username: "gw-x2", password: "gw-x2-secret" };
    writeFileSync(
      join(dir, "users.yaml"),
      `kind: broker-users
users:
  - { username: gw-x2, passwordHash: "${await hashPassword(gwX2.password)}", role: gateway, corridor: test-corridor, intersection: x2 }
  - { username: alice, passwordHash: "${await hashPassword(alice.password)}", role: operator }
`,
    );
    const broker = start(["broker", "--port", "0", "--users", join(dir, "users.yaml")]);
    const url = (
      await until("the broker", 15_000, () => broker.lines.find((l) => l.msg === "broker listening"))
    ).url as string;

    // The operator may send this command, but not retained: the broker closes the connection (MQTT
    // 3.1.1 has no negative acknowledgement) and keeps nothing.
    const operator = await connect(url, alice);
    expect(await publishOutcome(operator, FLASH_X1_ALICE, flashOn("r1", "alice"))).toBe("closed");
    // Nor may a gateway leave a retained message in a neighbour's inbox.
    const neighbour = await connect(url, gwX2);
    const inquiry = JSON.stringify({
      v: 1,
      from: "x2",
      to: "x1",
      sentAtWallMs: Date.now(),
      body: { type: "inquiry", txnId: "t1" },
    });
    expect(await publishOutcome(neighbour, INBOX_X1_FROM_X2, inquiry)).toBe("closed");
    const refusals = () =>
      broker.lines.filter((l) => String(l.msg).startsWith("publish refused: commands and inbox"));
    await until("the broker's refusals in its log", 5000, () => refusals().length >= 2);
    expect(refusals().map((l) => l.topic)).toEqual([FLASH_X1_ALICE, INBOX_X1_FROM_X2]);

    expect(await retainedUnderCorridor(url, alice)).toEqual([]);
    // The same command, not retained, is an operator's to send: the refusal is about the flag alone.
    const again = await connect(url, alice);
    await again.publishAsync(FLASH_X1_ALICE, flashOn("r2", "alice"), { qos: 1 });
    await again.endAsync();
  }, 60_000);

  const haveMosquitto = hasTool("mosquitto", "the retained-command test against Debian's Mosquitto");

  it.skipIf(!haveMosquitto)(
    "kept by Mosquitto, is dropped by the gateway at start-up and counted: no flash",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "greenwave-retained-mosquitto-"));
      dirs.push(dir);
      const port = await freePort();
      const url = `mqtt://127.0.0.1:${String(port)}`;
      writeFileSync(
        join(dir, "mosquitto.conf"),
        `listener ${String(port)} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n`,
      );
      const mosquitto: ChildProcess = spawn("mosquitto", ["-c", join(dir, "mosquitto.conf"), "-v"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let mosquittoLog = "";
      mosquitto.stdout?.on("data", (d: Buffer) => (mosquittoLog += d.toString()));
      mosquitto.stderr?.on("data", (d: Buffer) => (mosquittoLog += d.toString()));
      try {
        await until("mosquitto listening", 10_000, () =>
          /running|Opening ipv4 listen socket/.test(mosquittoLog),
        );

        // What `mosquitto_pub -r -t …/cmd/flash -m '{"on":true…}'` does: Mosquitto has no such ACL and keeps it.
        const mallory = await connect(url, null);
        await mallory.publishAsync(FLASH_X1, flashOn("replayed", "mallory"), { qos: 1, retain: true });
        await mallory.endAsync();
        const kept = await retainedUnderCorridor(url, null);
        expect(kept.map((m) => m.topic)).toEqual([FLASH_X1]);

        // A gateway starting now subscribes and is handed the retained command at once.
        const sim = start(["sim", "io-module", "--tcp", "0", "--control", "0"]);
        const simUp = await until("the simulator", 15_000, () =>
          sim.lines.find((l) => l.event === "listening"),
        );
        const fixture = writeFixture(`{ tcp: "127.0.0.1:${String(simUp.modbusPort)}" }`);
        dirs.push(fixture.dir);
        const watcher = await connect(url, null);
        const replies: string[] = [];
        watcher.on("message", (_topic, payload) => replies.push(payload.toString()));
        await watcher.subscribeAsync(REPLY_X1, { qos: 1 });
        const gateway = start([
          "gateway",
          "--config",
          fixture.intersection,
          "--data-dir",
          fixture.dataDir,
          "--broker",
          url,
          "--http",
          "127.0.0.1:0",
        ]);
        const http = (
          await until("the gateway", 15_000, () => gateway.lines.find((l) => l.msg === "gateway started"))
        ).http as string;
        await until("the gateway on the broker", 15_000, () =>
          gateway.lines.find((l) => l.msg === "connected to the broker"),
        );
        const droppedRetained = async () => {
          const text = await (await fetch(`${http}/metrics`)).text();
          const line = text
            .split("\n")
            .find(
              (l) =>
                l.startsWith("greenwave_inbound_dropped_total{") &&
                l.includes('class="command"') &&
                l.includes('reason="retained"'),
            );
          return line ? Number(line.split(" ").at(-1)) : 0;
        };
        // Start-up runs its course into normal operation; no scheduled flash, no reply to the replayed command.
        const modes = () =>
          gateway.lines
            .filter((l) => (l.event as { type?: string } | undefined)?.type === "mode")
            .map((l) => (l.event as { mode: string }).mode);
        await until("normal operation after start-up", 20_000, () => modes().length >= 1);
        expect(modes()[0]).toMatch(/^(transition|coordinated)$/);
        expect(modes()).not.toContain("flash");
        expect(
          gateway.lines.some((l) => (l.event as { type?: string } | undefined)?.type === "cycle-start"),
        ).toBe(true);
        // It was delivered right after the subscription: counted as dropped, never acted on.
        const deadline = performance.now() + 10_000;
        while ((await droppedRetained()) < 1 && performance.now() < deadline)
          await new Promise((r) => setTimeout(r, 100));
        expect(await droppedRetained()).toBe(1);
        expect(replies.filter((r) => r.includes('"replayed"'))).toEqual([]);
        expect(
          gateway.lines.find((l) => String(l.msg).startsWith("incoming messages dropped"))?.dropped,
        ).toMatchObject({ "command from operators: retained": 1 });
        await watcher.endAsync();
      } finally {
        mosquitto.kill("SIGTERM");
        await new Promise((r) => (mosquitto.exitCode === null ? mosquitto.once("exit", r) : r(null)));
      }
    },
    60_000,
  );
});
