import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "../e2e/cli.js";
import { cleanupProcesses, cli, type Proc, start } from "../e2e/processes.js";
import { attempt } from "../support/mqtt-attempt.js";
import { type Issued, makeTestCa, type TestCa } from "../support/mtls-certificates.js";
import { hasTool } from "../support/tools.js";

/**
 * Issue 20, item 4, "certificate of another gateway": `greenwave broker` with a client CA and
 * `--require-client-cert`, and `greenwave gateway`s as processes, each with a certificate issued as
 * docs/mtls.md says. Gateway x1's certificate is the stolen credential: a gateway configured as x2
 * holding it never gets x2 online, and it cannot log in as gw-x2; the real x1 and an operator work
 * beside it.
 */

const haveOpenssl = hasTool(
  "openssl",
  "the client-certificate attack tests (certificates are made with openssl)",
);

describe.skipIf(!haveOpenssl)(
  "the certificate of another gateway, against greenwave broker --client-ca",
  () => {
    let dir: string;
    let ca: TestCa;
    let x1: Issued;
    let alice: Issued;
    let fixture: ReturnType<typeof writeCorridorFixture>;
    let broker: Proc;
    let url: string;
    let metricsUrl: string;
    const tls = (who: Issued) => [
      "--ca-file",
      ca.caFile,
      "--cert-file",
      who.certFile,
      "--key-file",
      who.keyFile,
    ];
    const gateway = (id: string, who: Issued, extra: string[] = []) =>
      start([
        ...["gateway", "--config", join(fixture.dir, `${id}.yaml`), "--data-dir", join(dir, `data-${id}`)],
        ...["--broker", url, ...tls(who), ...extra],
      ]);

    beforeAll(async () => {
      buildOnce();
      dir = mkdtempSync(join(tmpdir(), "greenwave-cert-attack-"));
      ca = makeTestCa(dir);
      x1 = ca.issue("gw-x1");
      ca.issue("gw-x2");
      alice = ca.issue("alice", { days: 90 });
      fixture = writeCorridorFixture(2);
      writeFileSync(
        join(dir, "users.yaml"),
        `kind: broker-users
users:
  - { username: gw-x1, role: gateway, corridor: test-corridor, intersection: x1 }
  - { username: gw-x2, role: gateway, corridor: test-corridor, intersection: x2 }
  - { username: alice, role: operator }
`,
      );
      broker = start([
        ...["broker", "--port", "0", "--users", join(dir, "users.yaml"), "--http", "127.0.0.1:0"],
        ...["--tls-cert", ca.broker.certFile, "--tls-key", ca.broker.keyFile, "--client-ca", ca.caFile],
        "--require-client-cert",
      ]);
      const listening = await until("the broker", 10_000, () =>
        broker.lines.find((l) => l.msg === "broker listening"),
      );
      url = String(listening.url);
      metricsUrl = `${String(listening.http).replace(/\/$/, "")}/metrics`;
      expect(url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
      expect(broker.lines.find((l) => String(l.msg).startsWith("client certificates:"))).toMatchObject({
        clientCa: "CN=greenwave client CA",
        required: true,
      });
    }, 120_000);

    afterAll(async () => {
      await cleanupProcesses();
      if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("a gateway configured as x2 holding x1's certificate never gets x2 online: the ACL refuses its every publish", async () => {
      const real = gateway("x1", x1);
      await until("x1 connected", 15_000, () => real.lines.find((l) => l.msg === "connected to the broker"));
      const rogue = gateway("x2", x1);
      const refusals = () =>
        broker.lines.filter(
          (l) =>
            l.msg === "publish refused by the ACL" &&
            String(l.topic).startsWith("greenwave/v1/test-corridor/x2/"),
        );
      // It logs in (as gw-x1: its certificate says so) and each connection is cut at its first publish
      // under x2's branch (its availability): the first, and one more after its back-off.
      await until("two refused publishes under x2's branch", 15_000, () => refusals().length >= 2);
      expect(refusals().every((l) => l.role === "gateway")).toBe(true);
      expect(rogue.child.exitCode).toBeNull();

      // What the operator sees, logged in with her own certificate: x1 online, no x2 at all.
      const status = cli(["status", "--json", "--corridor", "test-corridor", "--broker", url, ...tls(alice)]);
      expect(status.status, status.stderr).toBe(0);
      const shown = (JSON.parse(status.stdout) as { intersections: { id: string; online: boolean }[] })
        .intersections;
      expect(shown.map((i) => [i.id, i.online])).toEqual([["x1", true]]);
      // Nothing of x2 was retained: a subscriber with alice's certificate gets nothing for its branch.
      const op = await mqtt.connectAsync(url, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        ca: ca.ca,
        cert: alice.cert,
        key: alice.key,
      });
      const retained: string[] = [];
      op.on("message", (topic) => retained.push(topic));
      await op.subscribeAsync("greenwave/v1/test-corridor/x2/#", { qos: 1 });
      await op.subscribeAsync("greenwave/v1/test-corridor/x1/availability", { qos: 1 });
      await until("x1's retained availability", 3000, () => retained.length > 0);
      expect(retained).toEqual(["greenwave/v1/test-corridor/x1/availability"]);
      await op.endAsync();
      // The real x1 is untouched by its twin's refusals (its own connection stays up).
      expect(real.lines.filter((l) => l.msg === "connected to the broker")).toHaveLength(1);
    }, 60_000);

    it("x1's certificate cannot log in as gw-x2: the command line refuses it, the broker too (CONNACK 5)", async () => {
      const claimed = cli(["status", "--json", "--broker", url, ...tls(x1), "--username", "gw-x2"]);
      expect(claimed.status).toBe(2);
      expect(claimed.stderr).toContain(
        "--username gw-x2 is not the name in the client certificate (CN gw-x1)",
      );
      // An attacker's own client skips that check: the broker refuses the name, and logs it.
      const outcome = await attempt(url, {
        ca: ca.ca,
        cert: x1.cert,
        key: x1.key,
        username: "gw-x2",
        password: "",
      });
      expect(outcome).toEqual({ kind: "refused", code: 5 });
      await until("the broker's log line", 3000, () =>
        broker.lines.find(
          (l) =>
            l.msg ===
              'connection refused: the user name "gw-x2" is not the client certificate\'s CN "gw-x1"' &&
            l.subject === "CN=gw-x1",
        ),
      );
    });

    it("a certificate of another CA with x2's name, and no certificate with any password, are closed at the handshake", async () => {
      const forged = makeTestCa(dir).issue("gw-x2");
      expect((await attempt(url, { ca: ca.ca, cert: forged.cert, key: forged.key })).kind).toBe("closed");
      expect((await attempt(url, { ca: ca.ca, username: "gw-x2", password: "guess" })).kind).toBe("closed");
      const metrics = await (await fetch(metricsUrl)).text();
      expect(metrics).toContain(
        'greenwave_broker_client_certificates_refused_total{reason="unknown-issuer"} 1',
      );
      expect(metrics).toContain(
        'greenwave_broker_client_certificates_refused_total{reason="no-certificate"} 1',
      );
      expect(metrics).toMatch(/greenwave_broker_logins_refused_total\{reason="certificate"\} 1\n/);
    });
  },
);

describe("greenwave broker's certificate flags, checked before it listens", () => {
  beforeAll(() => buildOnce(), 120_000);

  it("--client-ca needs TLS and a users file; --require-client-cert needs --client-ca; a leaf is no CA", () => {
    if (!haveOpenssl) return;
    const ca = makeTestCa();
    try {
      const leaf = ca.issue("gw-x1");
      const users = join(ca.dir, "users.yaml");
      writeFileSync(users, "kind: broker-users\nusers:\n  - { username: alice, role: operator }\n");
      const tlsFlags = ["--tls-cert", ca.broker.certFile, "--tls-key", ca.broker.keyFile];
      const cases: [string[], string][] = [
        [["--users", users, "--client-ca", ca.caFile], "--client-ca needs --tls-cert and --tls-key"],
        [[...tlsFlags, "--client-ca", ca.caFile], "--client-ca needs --users FILE"],
        [
          ["--users", users, ...tlsFlags, "--require-client-cert"],
          "--require-client-cert needs --client-ca FILE",
        ],
        [["--users", users, ...tlsFlags, "--client-ca", leaf.certFile], "is not a CA certificate (CN=gw-x1"],
      ];
      for (const [flags, message] of cases) {
        const run = cli(["broker", "--port", "0", ...flags]);
        expect(run.status, run.stderr).toBe(2);
        expect(run.stderr).toContain(message);
      }
    } finally {
      rmSync(ca.dir, { recursive: true, force: true });
    }
  }, 30_000);
});
