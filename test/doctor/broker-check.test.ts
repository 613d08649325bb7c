import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aedes, type AuthenticateError } from "aedes";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { type BrokerUser, hashPassword } from "../../gateway/broker/users.js";
import { checkBroker } from "../../gateway/doctor/broker-check.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { makeTestCa } from "../support/mtls-certificates.js";
import { hasTool } from "../support/tools.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FROM = "/etc/greenwave/gateway.env";

/** The project's broker (aedes, scrypt users) with one gateway user, gw-elm / "s3cret". */
async function broker(tls?: { cert: Buffer; key: Buffer }): Promise<RunningBroker> {
  const users = new Map<string, BrokerUser>([
    [
      "gw-elm",
      {
        principal: { role: "gateway", username: "gw-elm", corridor: "main-street", intersection: "elm" },
        passwordHash: await hashPassword("s3cret"),
      },
    ],
  ]);
  const b = await startBroker({ host: "127.0.0.1", port: 0, users, ...(tls ? { tls } : {}) });
  cleanups.push(() => b.close());
  return b;
}

describe("greenwave doctor: the broker, with the configured credentials", () => {
  it("good credentials: PASS, with where the settings came from", async () => {
    const b = await broker();
    const result = await checkBroker({
      kind: "target",
      target: { url: b.url, username: "gw-elm", password: "s3cret" },
      from: FROM,
    });
    expect(result.status).toBe("PASS");
    expect(result.detail).toMatch(
      new RegExp(`^${b.url} as gw-elm: connected in \\d+ ms \\(settings from ${FROM}\\)$`),
    );
  });

  it("a wrong password: bad credentials (CONNACK 4), what to check", async () => {
    const b = await broker();
    const result = await checkBroker({
      kind: "target",
      target: { url: b.url, username: "gw-elm", password: "wrong" },
      from: FROM,
    });
    expect(result.status).toBe("FAIL");
    expect(result.detail).toBe(
      `${b.url} as gw-elm: the broker refuses the user name or password (CONNACK 4)`,
    );
    expect(result.action).toContain("password file");
    expect(result.action).toContain("greenwave broker hash-password");
    expect(b.counters.authFailures).toBe(1);
  });

  it("a user the broker knows but does not let in: not authorised (CONNACK 5)", async () => {
    const aedes = await Aedes.createBroker({
      authenticate: (_client, username, _password, done) => {
        if (username === "gw-oak")
          return done(
            Object.assign(new Error("not authorised"), { returnCode: 5 }) as AuthenticateError,
            false,
          );
        done(null, true);
      },
    });
    const server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(async () => {
      await new Promise<void>((r) => aedes.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    });
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
    const result = await checkBroker({
      kind: "target",
      target: { url, username: "gw-oak", password: "x" },
      from: FROM,
    });
    expect(result.status).toBe("FAIL");
    expect(result.detail).toBe(
      `${url} as gw-oak: the broker does not let user gw-oak connect (CONNACK 5, not authorised)`,
    );
  });

  it("nothing listening: refused", async () => {
    const url = `mqtt://127.0.0.1:${await freePort()}`;
    const result = await checkBroker({
      kind: "target",
      target: { url, username: "gw-elm", password: "x" },
      from: FROM,
    });
    expect(result.status).toBe("FAIL");
    expect(result.detail).toContain("nothing listens at 127.0.0.1:");
    expect(result.action).toContain(`${FROM} (GREENWAVE_BROKER_URL)`);
  });

  it("a port that accepts but never speaks MQTT: a timeout, bounded", async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          silent.close(() => r());
        }),
    );
    const url = `mqtt://127.0.0.1:${(silent.address() as { port: number }).port}`;
    const started = performance.now();
    const result = await checkBroker({ kind: "target", target: { url }, from: FROM }, 800);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(result.status).toBe("FAIL");
    expect(result.detail).toBe(`${url} without a user name: connected, but no MQTT answer within 0.8 s`);
  });

  it("no broker configured: a WARN, the gateway runs stand-alone", async () => {
    const result = await checkBroker({ kind: "none", envFile: FROM });
    expect(result).toMatchObject({
      status: "WARN",
      detail: "no broker configured: the gateway runs stand-alone",
    });
    expect(result.action).toContain(`GREENWAVE_BROKER_URL in ${FROM}`);
  });

  it("unusable settings (an unreadable password file): a FAIL naming where to fix them", async () => {
    const result = await checkBroker({
      kind: "unusable",
      problem:
        "cannot read the password file (--password-file) /etc/greenwave/broker.secret: permission denied",
      from: FROM,
    });
    expect(result).toMatchObject({ status: "FAIL", action: `fix the broker settings in ${FROM}` });
  });
});

describe.skipIf(
  !hasTool("openssl", "the doctor's TLS broker check (a self-signed certificate is made with openssl)"),
)("greenwave doctor: a broker over TLS", () => {
  function selfSigned(): { cert: Buffer; key: Buffer } {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-doctor-tls-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const made = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        .concat(["-addext", "subjectAltName=IP:127.0.0.1"])
        .concat(["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]),
      { encoding: "utf8" },
    );
    expect(made.status, made.stderr).toBe(0);
    return { cert: readFileSync(join(dir, "cert.pem")), key: readFileSync(join(dir, "key.pem")) };
  }

  it("a private CA not given: a TLS failure that says to give --ca-file; given: PASS", async () => {
    const tls = selfSigned();
    const b = await broker(tls);
    const untrusted = await checkBroker({
      kind: "target",
      target: { url: b.url, username: "gw-elm", password: "s3cret" },
      from: FROM,
    });
    expect(untrusted.status).toBe("FAIL");
    expect(untrusted.detail).toContain("TLS failed: self-signed certificate");
    expect(untrusted.action).toContain("--ca-file");
    const trusted = await checkBroker({
      kind: "target",
      target: { url: b.url, username: "gw-elm", password: "s3cret", ca: tls.cert },
      from: FROM,
    });
    expect(trusted.status).toBe("PASS");
  });

  it("mqtts:// to a plain MQTT port: a TLS failure, not a timeout", async () => {
    const b = await broker();
    const url = b.url.replace("mqtt://", "mqtts://");
    const result = await checkBroker({ kind: "target", target: { url }, from: FROM });
    expect(result.status).toBe("FAIL");
    expect(result.detail).toMatch(/TLS failed|reset the connection|closed the connection/);
    expect(result.detail).not.toContain("no connection within");
  });
});

describe.skipIf(
  !hasTool("openssl", "the doctor's client-certificate checks (certificates are made as docs/mtls.md says)"),
)("greenwave doctor: a broker that takes client certificates (docs/mtls.md)", () => {
  async function certificateBroker() {
    const ca = makeTestCa();
    cleanups.push(() => rmSync(ca.dir, { recursive: true, force: true }));
    const users = new Map<string, BrokerUser>([
      [
        "gw-elm",
        {
          principal: { role: "gateway", username: "gw-elm", corridor: "main-street", intersection: "elm" },
          passwordHash: null,
        },
      ],
    ]);
    const b = await startBroker({
      host: "127.0.0.1",
      port: 0,
      users,
      tls: { cert: ca.broker.cert, key: ca.broker.key, clientCa: ca.ca, requireClientCert: true },
    });
    cleanups.push(() => b.close());
    const check = (who: { cert: Buffer; key: Buffer }, username = "gw-elm") =>
      checkBroker({
        kind: "target",
        target: { url: b.url, username, ca: ca.ca, cert: who.cert, key: who.key },
        from: FROM,
      });
    return { ca, check };
  }

  it("a good certificate: PASS, saying until when it is valid; 30 days before its end: WARN, to issue the next", async () => {
    const { ca, check } = await certificateBroker();
    const good = await check(ca.issue("gw-elm"));
    expect(good.status).toBe("PASS");
    expect(good.detail).toMatch(
      / as gw-elm \(client certificate valid until \w{3} .+ GMT\): connected in \d+ ms/,
    );
    const ending = await check(ca.issue("gw-elm", { days: 10 }));
    expect(ending.status).toBe("WARN");
    expect(ending.detail).toMatch(/; the client certificate ends in 9 days$/);
    expect(ending.action).toContain("issue the next certificate now");
  });

  it("an expired certificate: FAIL, saying it expired and where the broker says why", async () => {
    const { ca, check } = await certificateBroker();
    const result = await check(ca.issue("gw-elm", { days: -1 }));
    expect(result.status).toBe("FAIL");
    expect(result.detail).toMatch(/; the client certificate expired on .+ GMT$/);
    expect(result.action).toContain(
      "a broker that takes client certificates closes a connection whose certificate it does not accept (none, expired, another CA): its log says why",
    );
  });

  it("a certificate whose CN is no user of the broker: FAIL, not authorised, saying the CN is the user", async () => {
    const { ca, check } = await certificateBroker();
    const result = await check(ca.issue("gw-birch"), "gw-birch");
    expect(result.status).toBe("FAIL");
    expect(result.detail).toContain(
      "the broker does not let user gw-birch connect (CONNACK 5, not authorised)",
    );
    expect(result.action).toContain("the broker logs a client certificate in as its CN (gw-birch)");
  });
});
