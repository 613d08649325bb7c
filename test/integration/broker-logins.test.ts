import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { LOGIN_LIMITS_PER_ADDRESS } from "../../gateway/broker/login-guard.js";
import { hashPassword, loadBrokerUsers } from "../../gateway/broker/users.js";

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

/** One login from `localAddress`: the CONNACK's return code (0 accepted) and how long it took, in ms. */
function login(
  port: number,
  localAddress: string,
  username: string,
  password: string,
): Promise<{ code: number | null; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ code, ms: performance.now() - started });
    };
    socket.on("connect", () => socket.write(connectPacket(`c${Math.random()}`, username, password)));
    socket.on("data", (data) => finish(data[0] === 0x20 ? (data[3] ?? null) : null));
    socket.on("error", () => finish(null));
    socket.on("close", () => finish(null));
    setTimeout(() => finish(null), 10_000);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

let broker: RunningBroker;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "greenwave-logins-"));
  writeFileSync(
    join(dir, "users.yaml"),
    `kind: broker-users
users:
  - { username: gw-elm, passwordHash: "${await hashPassword("gateway-secret-1")}", role: gateway, corridor: main-street, intersection: elm }
`,
  );
  broker = await startBroker({ host: "127.0.0.1", port: 0, users: loadBrokerUsers(join(dir, "users.yaml")) });
}, 30_000);
afterAll(async () => {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the embedded broker's logins (aedes on loopback, real scrypt hashes)", () => {
  it("an unknown user name is refused after the same work as a wrong password: the time does not tell names apart", async () => {
    const unknown: number[] = [];
    const known: number[] = [];
    // Interleaved, from two addresses of their own, within each address's burst.
    for (let i = 0; i < 8; i++) {
      const u = await login(broker.port, "127.0.0.2", "nobody-here", "guess-guess");
      const k = await login(broker.port, "127.0.0.3", "gw-elm", "guess-guess");
      expect([u.code, k.code]).toEqual([4, 4]);
      unknown.push(u.ms);
      known.push(k.ms);
    }
    const ratio = median(unknown) / median(known);
    // Before the fix: 1.1 ms against 43–52 ms (a ratio of 0.02). Now both hash.
    expect(
      ratio,
      `unknown ${median(unknown).toFixed(1)} ms, known ${median(known).toFixed(1)} ms`,
    ).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  }, 60_000);

  it("a brute-force run from one address is rate limited, and a legitimate login from another still takes under a second", async () => {
    const before = broker.logins.rateLimited;
    const attacker = "127.0.0.4";
    const attempts: Promise<{ code: number | null; ms: number }>[] = [];
    for (let wave = 0; wave < 10; wave++)
      for (let c = 0; c < 20; c++)
        attempts.push(login(broker.port, attacker, "gw-elm", `wrong-${wave}-${c}`));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const legit = await login(broker.port, "127.0.0.5", "gw-elm", "gateway-secret-1");
    expect(legit.code).toBe(0);
    expect(legit.ms).toBeLessThan(1000);
    const results = await Promise.all(attempts);
    expect(results.every((r) => r.code !== 0)).toBe(true);
    // Past the burst, the address's attempts are refused before any hashing ("server unavailable", 3).
    const limited = results.filter((r) => r.code === 3).length;
    expect(limited).toBeGreaterThanOrEqual(200 - LOGIN_LIMITS_PER_ADDRESS.burst - 10);
    expect(broker.logins.rateLimited - before).toBe(limited);
  }, 60_000);

  it("successful logins give their budget back: a site's gateways behind one address reconnect, 30 in a row, none refused", async () => {
    for (let i = 0; i < 30; i++) {
      const ok = await login(broker.port, "127.0.0.6", "gw-elm", "gateway-secret-1");
      expect(ok.code, `login ${i + 1}`).toBe(0);
    }
  }, 60_000);
});
