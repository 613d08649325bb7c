import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { hashPassword, loadBrokerUsers } from "../../gateway/broker/users.js";

/**
 * Issue 20, item 5: a login flood from many source addresses must not lock out a legitimate login.
 * Linux routes all of 127.0.0.0/8 to lo, so each attacker socket is bound to a loopback address of
 * its own (127.0.1.1 … 127.0.1.240): the per-address limit alone does not hold them back.
 */

/** An MQTT 3.1.1 CONNECT with a user name and password, by hand: the test picks its source address. */
function connectPacket(clientId: string, username: string, password: string): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  };
  const body = Buffer.concat([
    str("MQTT"),
    Buffer.from([4, 0xc2, 0, 30]),
    str(clientId),
    str(username),
    str(password),
  ]);
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x10, ...length]), body]);
}

/** One login from `localAddress`: the CONNACK's return code (0 accepted; null: none) and its time in ms. */
function login(
  port: number,
  localAddress: string,
  username: string,
  password: string,
  timeoutMs = 10_000,
): Promise<{ code: number | null; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ code, ms: performance.now() - started });
    };
    socket.on("connect", () => socket.write(connectPacket(`c${Math.random()}`, username, password)));
    socket.on("data", (data) => finish(data[0] === 0x20 ? (data[3] ?? null) : null));
    socket.on("error", () => finish(null));
    socket.on("close", () => finish(null));
    const timer = setTimeout(() => finish(null), timeoutMs);
  });
}

const ATTACKERS = 240;
const PASSWORD = "gateway-secret-1";

let broker: RunningBroker;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "greenwave-login-flood-"));
  const hash = await hashPassword(PASSWORD);
  writeFileSync(
    join(dir, "users.yaml"),
    `kind: broker-users
users:
  - { username: gw-elm, passwordHash: "${hash}", role: gateway, corridor: main-street, intersection: elm }
  - { username: gw-oak, passwordHash: "${hash}", role: gateway, corridor: main-street, intersection: oak }
`,
  );
  broker = await startBroker({ host: "127.0.0.1", port: 0, users: loadBrokerUsers(join(dir, "users.yaml")) });
}, 30_000);
afterAll(async () => {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Attackers in a process of their own (the broker runs in the test's), from `ATTACKERS` addresses,
 * each keeping one wrong-password login going (a new one as soon as one ends) until `stop()`, against
 * the user name `target` gives (`{a}` and `{n}` in it: the address's and the attempt's number). Says
 * how the attempts ended: CONNACK return codes (3: server unavailable, 4: bad user name or password).
 */
function loginFlood(port: number, target: string) {
  const script = `
    const net = require("node:net");
    ${connectPacket.toString()}
    let running = true;
    const codes = {};
    process.on("SIGTERM", () => { running = false; });
    const one = (a, n) => new Promise((resolve) => {
      const s = net.connect({ port: ${String(port)}, host: "127.0.0.1", localAddress: "127.0.1." + (a + 1) });
      let done = false;
      const finish = (code) => { if (done) return; done = true; clearTimeout(t); s.destroy(); codes[code] = (codes[code] || 0) + 1; resolve(); };
      const user = ${JSON.stringify(target)}.replace("{a}", a).replace("{n}", n);
      s.on("connect", () => s.write(connectPacket("x" + a + "-" + n, user, "wrong-" + a + "-" + n)));
      s.on("data", (d) => finish(d[0] === 0x20 ? d[3] : null));
      s.on("error", () => finish(null));
      s.on("close", () => finish(null));
      const t = setTimeout(() => finish(null), 5000);
    });
    Promise.all(Array.from({ length: ${String(ATTACKERS)} }, async (_, a) => {
      for (let n = 0; running; n++) await one(a, n);
    })).then(() => { console.log(JSON.stringify(codes)); process.exit(0); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<Record<string, number>>((resolve) =>
    child.on("exit", () => resolve(out ? (JSON.parse(out) as Record<string, number>) : {})),
  );
  return {
    stop: async () => {
      child.kill("SIGTERM");
      return await exited;
    },
  };
}

describe("a login flood from 240 loopback addresses against the embedded broker (real scrypt hashes)", () => {
  it("against a known user (gw-elm): that user's legitimate logins still take under a second", async () => {
    // gw-elm logged in before, from its cabinet's address: the broker knows this pair as good.
    expect((await login(broker.port, "127.0.0.10", "gw-elm", PASSWORD)).code).toBe(0);
    const attack = loginFlood(broker.port, "gw-elm");
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const legit: { code: number | null; ms: number }[] = [];
    for (let i = 0; i < 5; i++) {
      legit.push(await login(broker.port, "127.0.0.10", "gw-elm", PASSWORD));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    // Another gateway, from an address never seen before, is not locked out either.
    const other = await login(broker.port, "127.0.0.11", "gw-oak", PASSWORD);
    const codes = await attack.stop();
    console.log(
      `[login-flood] ${String(ATTACKERS)} addresses against gw-elm: attempts ended ${JSON.stringify(codes)}; ` +
        `gw-elm's own logins ${legit.map((l) => `${String(l.code)} in ${l.ms.toFixed(0)} ms`).join(", ")}; ` +
        `gw-oak from a new address ${String(other.code)} in ${other.ms.toFixed(0)} ms; broker ${JSON.stringify(broker.logins)}`,
    );
    for (const l of legit) {
      expect(l.code).toBe(0);
      expect(l.ms).toBeLessThan(1000);
    }
    expect(other.code).toBe(0);
    expect(other.ms).toBeLessThan(1000);
    expect(codes["0"]).toBeUndefined();
    expect(broker.logins.userLimited).toBeGreaterThan(0);
  }, 60_000);

  it("with a new user name at every attempt (the per-user limit does not hold it): the queue is full, and a gateway that logged in before from its address still gets in under a second", async () => {
    expect((await login(broker.port, "127.0.0.12", "gw-oak", PASSWORD)).code).toBe(0);
    const before = { ...broker.logins };
    const attack = loginFlood(broker.port, "guess-{a}-{n}");
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const legit: { code: number | null; ms: number }[] = [];
    for (let i = 0; i < 5; i++) {
      legit.push(await login(broker.port, "127.0.0.12", "gw-oak", PASSWORD));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const codes = await attack.stop();
    console.log(
      `[login-flood] ${String(ATTACKERS)} addresses, a new name each attempt: attempts ended ${JSON.stringify(codes)}; ` +
        `gw-oak's own logins ${legit.map((l) => `${String(l.code)} in ${l.ms.toFixed(0)} ms`).join(", ")}; broker ${JSON.stringify(broker.logins)}`,
    );
    for (const l of legit) {
      expect(l.code).toBe(0);
      expect(l.ms).toBeLessThan(1000);
    }
    // The flood did fill the shared queue: without the known-good queue these logins waited behind it.
    expect(broker.logins.busy - before.busy).toBeGreaterThan(0);
    expect(broker.logins.knownGood - before.knownGood).toBe(5);
  }, 60_000);
});
