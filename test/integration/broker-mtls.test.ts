import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IClientOptions, MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerOptions, type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { hashPassword, loadBrokerUsers } from "../../gateway/broker/users.js";
import { brokerMetrics } from "../../gateway/cli/broker.js";
import { brokerSettings } from "../../gateway/cli/broker-options.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { type Issued, makeTestCa, type TestCa } from "../support/mtls-certificates.js";
import { attempt } from "../support/mqtt-attempt.js";
import { hasTool } from "../support/tools.js";

/**
 * Issue 20, item 4: the embedded broker with a client CA (aedes in process, TLS on loopback), and
 * certificates issued exactly as docs/mtls.md says. Each row of the doc's table, the operator
 * principal, an expired certificate, and the client flags' refusals.
 */

const haveOpenssl = hasTool("openssl", "the client-certificate tests (certificates are made with openssl)");

const ELM_STATUS = "greenwave/v1/main-street/elm/status";
const OAK_STATUS = "greenwave/v1/main-street/oak/status";

const open: MqttClient[] = [];
async function connected(url: string, options: IClientOptions): Promise<MqttClient> {
  const outcome = await attempt(url, options);
  if (outcome.kind !== "connected") throw new Error(`not connected: ${JSON.stringify(outcome)}`);
  open.push(outcome.client);
  return outcome.client;
}

describe.skipIf(!haveOpenssl)("the embedded broker with client certificates (mTLS)", () => {
  let dir: string;
  let ca: TestCa;
  let certs: Record<"elm" | "oak" | "alice" | "birch" | "expired", Issued>;
  let broker: RunningBroker;
  let strict: RunningBroker;
  const logs: { message: string; detail: Record<string, unknown> }[] = [];
  const tlsAs = (who: Issued): IClientOptions => ({ ca: ca.ca, cert: who.cert, key: who.key });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "greenwave-mtls-"));
    ca = makeTestCa(dir);
    // The ended one first: issuing renames gw-elm's files, the valid one then takes their place.
    const expired = ca.issue("gw-elm", { days: -1, file: "gw-elm-expired" });
    certs = {
      expired,
      elm: ca.issue("gw-elm"),
      oak: ca.issue("gw-oak"),
      alice: ca.issue("alice", { days: 90 }),
      birch: ca.issue("gw-birch"),
    };
    writeFileSync(
      join(dir, "users.yaml"),
      `kind: broker-users
users:
  - { username: gw-elm, role: gateway, corridor: main-street, intersection: elm }
  - { username: gw-oak, role: gateway, corridor: main-street, intersection: oak }
  - { username: alice, role: operator }
  - { username: bob, passwordHash: "${await hashPassword("operator-secret-1")}", role: operator }
`,
    );
    const options: BrokerOptions = {
      host: "127.0.0.1",
      port: 0,
      users: loadBrokerUsers(join(dir, "users.yaml")),
      tls: { cert: ca.broker.cert, key: ca.broker.key, clientCa: ca.ca },
      onLog: (_level, message, detail) => logs.push({ message, detail: detail ?? {} }),
    };
    broker = await startBroker(options);
    strict = await startBroker({ ...options, tls: { ...options.tls!, requireClientCert: true } });
  }, 60_000);

  afterAll(async () => {
    for (const client of open) client.end(true);
    await broker?.close();
    await strict?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("elm's certificate logs in as gw-elm, with no user name and no password, and publishes under elm's branch", async () => {
    const alice = await connected(broker.url, tlsAs(certs.alice));
    const seen: string[] = [];
    alice.on("message", (topic) => seen.push(topic));
    await alice.subscribeAsync("greenwave/v1/main-street/+/status", { qos: 1 });
    const elm = await connected(broker.url, tlsAs(certs.elm));
    await elm.publishAsync(ELM_STATUS, "{}", { qos: 1 });
    await until("elm's status at alice", 3000, () => seen.includes(ELM_STATUS));
    // Its own name as user name, with any password (not checked), is the same login.
    const again = await connected(broker.url, { ...tlsAs(certs.elm), username: "gw-elm", password: "x" });
    await again.publishAsync(ELM_STATUS, "{}", { qos: 1 });
    expect(broker.counters.certificateLoginsRefused).toBe(0);
  });

  it("with elm's certificate, a publish under oak's branch is refused by the ACL and closes the connection", async () => {
    const alice = await connected(broker.url, tlsAs(certs.alice));
    const seen: string[] = [];
    alice.on("message", (topic) => seen.push(topic));
    await alice.subscribeAsync("greenwave/v1/main-street/+/status", { qos: 1 });
    const denied = broker.counters.publishDenied;
    const elm = await connected(broker.url, tlsAs(certs.elm));
    const closed = new Promise<void>((resolve) => elm.once("close", () => resolve()));
    elm.publish(OAK_STATUS, JSON.stringify({ mode: "flash" }), { qos: 1 });
    await closed;
    expect(broker.counters.publishDenied).toBe(denied + 1);
    expect(logs.at(-1)).toMatchObject({
      message: "publish refused by the ACL",
      detail: { topic: OAK_STATUS },
    });
    // What elm publishes next (on a new connection) arrives; oak's never did, and came before it.
    const next = await connected(broker.url, tlsAs(certs.elm));
    await next.publishAsync(ELM_STATUS, "{}", { qos: 1 });
    await until("elm's status at alice", 3000, () => seen.includes(ELM_STATUS));
    expect(seen).not.toContain(OAK_STATUS);
  });

  it("with elm's certificate, claiming user name gw-oak is refused: CONNACK 5, logged with both names", async () => {
    const outcome = await attempt(broker.url, { ...tlsAs(certs.elm), username: "gw-oak", password: "x" });
    expect(outcome).toEqual({ kind: "refused", code: 5 });
    expect(logs.at(-1)).toMatchObject({
      message: 'connection refused: the user name "gw-oak" is not the client certificate\'s CN "gw-elm"',
      detail: { subject: "CN=gw-elm", issuer: "CN=greenwave client CA" },
    });
  });

  it("a certificate of another CA, even with elm's name, is closed at the handshake: no CONNACK, counted and logged", async () => {
    const other = makeTestCa(dir).issue("gw-elm");
    const before = broker.counters.certificatesRefused["unknown-issuer"];
    const outcome = await attempt(broker.url, tlsAs(other));
    expect(outcome.kind).toBe("closed");
    expect(broker.counters.certificatesRefused["unknown-issuer"]).toBe(before + 1);
    expect(logs.at(-1)).toMatchObject({
      message: "connection closed: client certificate not accepted: not issued by the broker's client CA",
      detail: { subject: "CN=gw-elm", code: expect.stringMatching(/LEAF_SIGNATURE|ISSUER/) as unknown },
    });
    expect(logs.at(-1)?.detail.fingerprint256).toMatch(/^[0-9A-F:]{95}$/);
  });

  it("a certificate of this CA whose CN is no user is refused: CONNACK 5, logged with the subject", async () => {
    const outcome = await attempt(broker.url, tlsAs(certs.birch));
    expect(outcome).toEqual({ kind: "refused", code: 5 });
    expect(logs.at(-1)).toMatchObject({
      message: 'connection refused: the client certificate\'s CN "gw-birch" is no user of the users file',
      detail: { subject: "CN=gw-birch", serial: expect.stringMatching(/^[0-9A-F]+$/) as unknown },
    });
  });

  it("an operator's certificate is the operator: commands under its own login only", async () => {
    const elm = await connected(broker.url, tlsAs(certs.elm));
    const commands: string[] = [];
    elm.on("message", (topic) => commands.push(topic));
    await elm.subscribeAsync("greenwave/v1/main-street/elm/cmd/#", { qos: 1 });
    const alice = await connected(broker.url, tlsAs(certs.alice));
    await alice.publishAsync("greenwave/v1/main-street/elm/cmd/flash/@alice", "{}", { qos: 1 });
    await until("alice's command at elm", 3000, () => commands.length === 1);
    expect(commands).toEqual(["greenwave/v1/main-street/elm/cmd/flash/@alice"]);
    // Not under another operator's name, nor a gateway's topics.
    const closed = new Promise<void>((resolve) => alice.once("close", () => resolve()));
    alice.publish("greenwave/v1/main-street/elm/cmd/flash/@bob", "{}", { qos: 1 });
    await closed;
    expect(commands).toHaveLength(1);
  });

  it("an expired certificate is closed at the handshake (CERT_HAS_EXPIRED)", async () => {
    const outcome = await attempt(broker.url, tlsAs(certs.expired));
    expect(outcome.kind).toBe("closed");
    expect(logs.at(-1)).toMatchObject({
      message: "connection closed: client certificate not accepted: it has expired",
      detail: { code: "CERT_HAS_EXPIRED", subject: "CN=gw-elm" },
    });
    expect(broker.counters.certificatesRefused.expired).toBe(1);
  });

  it("the broker's own certificate is no client certificate (extended key usage serverAuth only)", async () => {
    const outcome = await attempt(broker.url, tlsAs(ca.broker));
    expect(outcome.kind).toBe("closed");
    expect(logs.at(-1)?.detail).toMatchObject({ code: "INVALID_PURPOSE", subject: "CN=greenwave broker" });
    expect(broker.counters.certificatesRefused["not-for-clients"]).toBe(1);
  });

  it("without --require-client-cert, passwords still log in; a certificate-only user's name does not", async () => {
    const bob = await attempt(broker.url, { ca: ca.ca, username: "bob", password: "operator-secret-1" });
    expect(bob.kind).toBe("connected");
    if (bob.kind === "connected") open.push(bob.client);
    const elm = await attempt(broker.url, { ca: ca.ca, username: "gw-elm", password: "operator-secret-1" });
    expect(elm).toEqual({ kind: "refused", code: 4 });
  });

  it("with --require-client-cert, a client without a certificate is closed at the handshake, even with a good password", async () => {
    const bob = await attempt(strict.url, { ca: ca.ca, username: "bob", password: "operator-secret-1" });
    expect(bob.kind).toBe("closed");
    expect(strict.counters.certificatesRefused["no-certificate"]).toBe(1);
    expect(logs.at(-1)?.message).toBe("connection closed: no client certificate (the broker requires one)");
    expect((await attempt(strict.url, tlsAs(certs.elm))).kind).toBe("connected");
  });

  it("a CA rotation: a client CA file with the old and the new CA takes the certificates of both", async () => {
    const next = makeTestCa(dir);
    const both = await startBroker({
      host: "127.0.0.1",
      port: 0,
      users: loadBrokerUsers(join(dir, "users.yaml")),
      tls: { cert: ca.broker.cert, key: ca.broker.key, clientCa: Buffer.concat([ca.ca, next.ca]) },
    });
    try {
      const fromNext = next.issue("gw-oak");
      for (const who of [certs.elm, fromNext]) {
        const outcome = await attempt(both.url, { ca: ca.ca, cert: who.cert, key: who.key });
        expect(outcome.kind).toBe("connected");
        if (outcome.kind === "connected") open.push(outcome.client);
      }
    } finally {
      await both.close();
    }
  });

  it("counts certificate refusals in its metrics, by reason", async () => {
    const text = await brokerMetrics(broker).metrics();
    expect(text).toContain('greenwave_broker_client_certificates_refused_total{reason="expired"} 1');
    expect(text).toContain('greenwave_broker_client_certificates_refused_total{reason="not-for-clients"} 1');
    expect(text).toMatch(/greenwave_broker_logins_refused_total\{reason="certificate"\} [1-9]/);
  });

  describe("the client flags (--cert-file, --key-file)", () => {
    const flags = (extra: Record<string, string> = {}) => ({
      broker: broker.url,
      caFile: ca.caFile,
      certFile: certs.elm.certFile,
      keyFile: certs.elm.keyFile,
      ...extra,
    });

    it("log in as the certificate's CN, with the certificate and key for mqtt.js", () => {
      const settings = brokerSettings(flags());
      expect(settings).toMatchObject({ url: broker.url, username: "gw-elm" });
      expect(String(settings?.cert)).toContain("BEGIN CERTIFICATE");
      expect(String(settings?.key)).toContain("PRIVATE KEY");
    });

    it("refuse a key file others may read, saying chmod 600", () => {
      const loose = join(dir, "loose.key");
      copyFileSync(certs.elm.keyFile, loose);
      chmodSync(loose, 0o644);
      expect(() => brokerSettings(flags({ keyFile: loose }))).toThrow(
        `--key-file: ${loose} is open to others (mode 0644): a private key must be 0600`,
      );
      chmodSync(loose, 0o640);
      expect(() => brokerSettings(flags({ keyFile: loose }))).toThrow(/mode 0640.*chmod 600/);
    });

    it("refuse another certificate's key, a lone --cert-file, mqtt://, another --username, a file that is no certificate", () => {
      expect(() => brokerSettings(flags({ keyFile: certs.oak.keyFile }))).toThrow(
        `--key-file: ${certs.oak.keyFile} is not the key of the certificate ${certs.elm.certFile}`,
      );
      expect(() => brokerSettings({ broker: broker.url, certFile: certs.elm.certFile })).toThrow(
        "--cert-file and --key-file go together",
      );
      expect(() => brokerSettings(flags({ broker: "mqtt://127.0.0.1:1883" }))).toThrow(
        "a client certificate (--cert-file) is sent over TLS only",
      );
      expect(() => brokerSettings(flags({ username: "gw-oak" }))).toThrow(
        "--username gw-oak is not the name in the client certificate (CN gw-elm)",
      );
      expect(() => brokerSettings(flags({ certFile: join(dir, "users.yaml") }))).toThrow(
        /--cert-file: .*users\.yaml is not a PEM certificate/,
      );
    });

    it("connect as their certificate's user through the operator's client", async () => {
      const { OperatorClient } = await import("../../gateway/operator/operator-client.js");
      const settings = brokerSettings(
        flags({ certFile: certs.alice.certFile, keyFile: certs.alice.keyFile }),
      );
      const op = await OperatorClient.connect({ ...settings!, timeoutMs: 3000 });
      expect(op.login).toBe("alice");
      await op.close();
    });
  });
});
