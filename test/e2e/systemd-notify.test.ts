import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { writeFixture } from "../support/fixture-intersection.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, dirs, type Proc, start } from "./processes.js";

/**
 * The gateway under systemd's notify protocol, through a real NOTIFY_SOCKET that the test owns (a Unix
 * datagram socket, as systemd's is): READY only after the first safe output reached the module,
 * watchdog pings only while the loop ticks and the module answers, STOPPING at a stop.
 */

interface UnixDgramSocket {
  on(event: "message", listener: (buf: Buffer) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  bind(path: string): void;
  close(): void;
}
const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram"): UnixDgramSocket;
};

interface Received {
  at: number;
  message: string;
}

/** systemd's half of the protocol: a bound datagram socket that keeps what arrives, with the time. */
function ownNotifySocket(): { path: string; received: Received[]; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-notify-"));
  dirs.push(dir);
  const path = join(dir, "notify");
  const received: Received[] = [];
  const socket = unixDgram.createSocket("unix_dgram");
  socket.on("message", (buf) => {
    for (const message of buf.toString("utf8").split("\n"))
      if (message) received.push({ at: Date.now(), message });
  });
  socket.on("error", (error) => {
    throw error;
  });
  socket.bind(path);
  return { path, received, close: () => socket.close() };
}

const WATCHDOG_MS = 2000;
const sockets: { close(): void }[] = [];

async function startSimulator(): Promise<{ proc: Proc; control: string; port: number }> {
  const proc = start(["sim", "io-module", "--tcp", "0", "--control", "0"]);
  const listening = await until("the simulator to listen", 10_000, () =>
    proc.lines.find((l) => l.event === "listening"),
  );
  return { proc, control: listening.control as string, port: listening.modbusPort as number };
}

async function setFaults(control: string, faults: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${control}/faults`, { method: "PUT", body: JSON.stringify(faults) });
  expect(res.status).toBe(200);
}

/** The module's own state: the host watchdog the gateway configures in its first exchange, before the coils. */
async function moduleWatchdogMs(control: string): Promise<number> {
  const state = (await (await fetch(`${control}/state`)).json()) as { watchdog: { timeoutMs: number } };
  return state.watchdog.timeoutMs;
}

const pings = (received: Received[], after: number) =>
  received.filter((r) => r.message === "WATCHDOG=1" && r.at > after);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("greenwave gateway as a systemd notify service (a real NOTIFY_SOCKET)", () => {
  beforeAll(buildOnce, 180_000);
  afterEach(async () => {
    await cleanupProcesses();
    for (const socket of sockets.splice(0)) socket.close();
  });

  it("is READY after the first safe output, pings only while the module answers and the loop runs, and says STOPPING", async () => {
    const notify = ownNotifySocket();
    sockets.push(notify);
    const sim = await startSimulator();
    const fixture = writeFixture(`{ tcp: "127.0.0.1:${sim.port}" }`);
    dirs.push(fixture.dir);
    // An installed gateway after a rolled-back upgrade: it says what it runs and why.
    mkdirSync(fixture.dataDir, { recursive: true });
    writeFileSync(
      join(fixture.dataDir, "release-state.json"),
      JSON.stringify({
        active: "0.1.0",
        previous: "0.2.0",
        history: [{ from: "0.1.0", to: "0.2.0", outcome: "rolled-back", why: "never READY", atWallMs: 1 }],
      }),
    );
    const gateway = start(["gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir], {
      NOTIFY_SOCKET: notify.path,
      WATCHDOG_USEC: String(WATCHDOG_MS * 1000),
    });

    const ready = await until("READY=1", 20_000, () => notify.received.find((r) => r.message === "READY=1"));
    // The first exchange (watchdog, then the start-up flash's coils) had reached the module when the
    // service manager heard READY. (The simulator's history records changes only: a first flash frame
    // equal to the power-up outputs has no entry of its own, so the module's state is asked instead.)
    expect(await moduleWatchdogMs(sim.control)).toBeGreaterThan(0);
    expect(notify.received.some((r) => r.message.startsWith("STATUS=startup"))).toBe(true);
    expect(gateway.out).toContain("running 0.1.0 after release 0.2.0 was rolled back");
    await until("three pings", 5000, () => pings(notify.received, ready.at).length >= 3);

    // A dead bus: the module stops answering. Within one watchdog period the pings stop.
    const silencedAt = Date.now();
    await setFaults(sim.control, { noAnswer: true });
    await sleep(WATCHDOG_MS * 2);
    const lastPing = pings(notify.received, 0).at(-1) as Received;
    expect(lastPing.at - silencedAt, "pings went on while the module was silent").toBeLessThan(WATCHDOG_MS);
    expect(gateway.out).toContain("watchdog ping withheld");

    // The module answers again: the pings resume (the gateway stays in its latched fault flash).
    const answeringAt = Date.now();
    await setFaults(sim.control, {});
    await until("pings to resume", 10_000, () => pings(notify.received, answeringAt).length >= 2);

    // A stalled process (the event loop stopped, here by SIGSTOP): no ping while it is stalled.
    const stalledAt = Date.now();
    gateway.child.kill("SIGSTOP");
    await sleep(WATCHDOG_MS * 1.5);
    const resumedAt = Date.now();
    gateway.child.kill("SIGCONT");
    expect(pings(notify.received, stalledAt + 200).filter((p) => p.at < resumedAt)).toEqual([]);
    await until("pings after the stall", 10_000, () => pings(notify.received, resumedAt).length >= 2);

    // A stop: STOPPING=1 comes first, while the clearances run.
    const exited = new Promise((resolve) => gateway.child.once("exit", resolve));
    gateway.child.kill("SIGTERM");
    await until("STOPPING=1", 5000, () => notify.received.find((r) => r.message === "STOPPING=1"));
    gateway.child.kill("SIGTERM"); // cut the clearances short: the test has what it came for
    await exited;
    rmSync(fixture.dir, { recursive: true, force: true });
  }, 90_000);
});
