import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IClientOptions, MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { docBlock, runDocStep } from "../support/doc-steps.js";
import { attempt } from "../support/mqtt-attempt.js";
import { type Issued, makeTestCa, type TestCa } from "../support/mtls-certificates.js";
import { hasTool } from "../support/tools.js";

/**
 * docs/mtls.md's steps as they stand: the openssl blocks (a CA, the broker's certificate, a client's
 * request and its signing), and the Mosquitto configuration with protocol.md's ACL file, on Debian's
 * Mosquitto 2 on a loopback port. Each block is read from the document, not copied here.
 */

const haveOpenssl = hasTool("openssl", "docs/mtls.md's openssl steps");
const haveMosquitto = haveOpenssl && hasTool("mosquitto", "docs/mtls.md's Mosquitto configuration");

const ELM_STATUS = "greenwave/v1/main-street/elm/status";
const OAK_STATUS = "greenwave/v1/main-street/oak/status";

let dir: string;
let ca: TestCa;
beforeAll(() => {
  if (!haveOpenssl) return;
  dir = mkdtempSync(join(tmpdir(), "greenwave-mtls-steps-"));
  ca = makeTestCa(dir);
}, 60_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!haveOpenssl)("docs/mtls.md's openssl steps", () => {
  it("make a CA and the broker's certificate; sign a request under the CA's name for it, which openssl verifies", () => {
    // The request claims another name: the signing step's -subj decides (the CA names the user).
    runDocStep("docs/mtls.md", "mtls-request", ca.dir, { NAME: "gw-elm" });
    const csr = join(ca.dir, "gw-elm.csr");
    const forged = spawnSync(
      "openssl",
      ["req", "-new", "-key", join(ca.dir, "gw-elm.key"), "-subj", "/CN=alice", "-out", csr],
      { encoding: "utf8" },
    );
    expect(forged.status, forged.stderr).toBe(0);
    const printed = runDocStep("docs/mtls.md", "mtls-sign", ca.dir, { NAME: "gw-elm", DAYS: "825" });
    expect(printed).toMatch(/^subject=CN = gw-elm\nserial=[0-9A-F]+\nnotAfter=/);
    const verify = (file: string, purpose: string) =>
      spawnSync("openssl", ["verify", "-purpose", purpose, "-CAfile", ca.caFile, join(ca.dir, file)], {
        encoding: "utf8",
      });
    expect(verify("gw-elm.pem", "sslclient").stdout).toContain("gw-elm.pem: OK");
    expect(verify("broker.pem", "sslserver").stdout).toContain("broker.pem: OK");
    // Neither passes for the other kind.
    expect(verify("gw-elm.pem", "sslserver").status).not.toBe(0);
    expect(verify("broker.pem", "sslclient").status).not.toBe(0);
    expect(readFileSync(join(ca.dir, "broker.pem"), "utf8")).toContain("BEGIN CERTIFICATE");
  });
});

/**
 * protocol.md's ACL file, with gw-oak's block made from gw-elm's (the document lists one gateway).
 */
function aclFile(): string {
  const acl = docBlock("docs/protocol.md", "On Mosquitto, the same rules are an `acl_file`:");
  const elm = /user gw-elm\n(?:topic .*\n)+/.exec(acl)?.[0];
  if (!elm) throw new Error("docs/protocol.md: no gw-elm block in the Mosquitto ACL");
  return `${acl}${elm.replaceAll("elm", "oak")}`;
}

describe.skipIf(!haveMosquitto)("docs/mtls.md's Mosquitto configuration, on Debian's Mosquitto 2", () => {
  let mosquitto: ChildProcess;
  let url: string;
  let log = "";
  const certs: Partial<Record<"elm" | "alice" | "birch" | "expired", Issued>> = {};
  const open: MqttClient[] = [];
  const tlsAs = (who: Issued | undefined): IClientOptions => ({ ca: ca.ca, cert: who?.cert, key: who?.key });
  const connected = async (options: IClientOptions) => {
    const outcome = await attempt(url, options);
    if (outcome.kind !== "connected") throw new Error(`not connected: ${JSON.stringify(outcome)}\n${log}`);
    open.push(outcome.client);
    return outcome.client;
  };

  beforeAll(async () => {
    certs.expired = ca.issue("gw-elm", { days: -1, file: "gw-elm-expired" });
    certs.elm = ca.issue("gw-elm");
    certs.alice = ca.issue("alice", { days: 90 });
    certs.birch = ca.issue("gw-birch");
    writeFileSync(join(ca.dir, "acl"), aclFile());
    const port = await freePort();
    const config = docBlock("docs/mtls.md", "<!-- test: mtls-mosquitto -->")
      .replace(/^listener 8883$/m, `listener ${port} 127.0.0.1`)
      .replaceAll("/etc/mosquitto/greenwave/", `${ca.dir}/`);
    expect(config).toContain(`listener ${port} 127.0.0.1`);
    writeFileSync(join(ca.dir, "mosquitto.conf"), config);
    // As root, Mosquitto reads its files as its own user, as the document's install step provides for.
    if (process.getuid?.() === 0) {
      const group = Number(spawnSync("id", ["-g", "mosquitto"], { encoding: "utf8" }).stdout.trim());
      chmodSync(dir, 0o755);
      chmodSync(ca.dir, 0o755);
      chownSync(ca.broker.keyFile, 0, group);
      chmodSync(ca.broker.keyFile, 0o640);
      for (const file of ["broker.pem", "ca.pem", "acl"]) chmodSync(join(ca.dir, file), 0o644);
    }
    url = `mqtts://127.0.0.1:${port}`;
    mosquitto = spawn("mosquitto", ["-c", join(ca.dir, "mosquitto.conf"), "-v"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    mosquitto.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    mosquitto.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    await until("mosquitto running", 10_000, () => / running/.test(log) || mosquitto.exitCode !== null);
    expect(mosquitto.exitCode, log).toBeNull();
  }, 60_000);

  afterAll(() => {
    for (const client of open) client.end(true);
    mosquitto?.kill("SIGTERM");
  });

  /** Publishes oak's status, then elm's, with `options`; returns what alice saw by the time elm's arrived. */
  async function oakThenElm(options: IClientOptions): Promise<string[]> {
    const alice = await connected(tlsAs(certs.alice));
    const seen: string[] = [];
    alice.on("message", (topic) => seen.push(topic));
    await alice.subscribeAsync("greenwave/v1/main-street/+/status", { qos: 1 });
    const client = await connected(options);
    // Mosquitto acknowledges a publish its ACL denies and drops it: in order, so oak's would come first.
    await client.publishAsync(OAK_STATUS, "{}", { qos: 1 });
    await client.publishAsync(ELM_STATUS, "{}", { qos: 1 });
    await until("elm's status at alice", 3000, () => seen.includes(ELM_STATUS));
    return seen;
  }

  it("elm's certificate logs in as gw-elm and publishes under elm's branch, never oak's", async () => {
    expect(await oakThenElm(tlsAs(certs.elm))).toEqual([ELM_STATUS]);
    expect(log).toMatch(/New client connected from 127\.0\.0\.1:\d+ as \S+ \(p2, c1, k\d+, u'gw-elm'\)/);
    expect(log).toContain(`Denied PUBLISH from`);
  });

  it("with elm's certificate, the user name gw-oak is ignored: still gw-elm, still not oak's branch", async () => {
    const seen = await oakThenElm({ ...tlsAs(certs.elm), username: "gw-oak", password: "x" });
    expect(seen).toEqual([ELM_STATUS]);
    expect(log).not.toContain("u'gw-oak'");
  });

  it("refuses at the handshake, with a TLS alert, another CA's certificate, an expired one, and none", async () => {
    const other = makeTestCa(dir).issue("gw-elm");
    expect(await attempt(url, tlsAs(other))).toMatchObject({ kind: "closed", message: /UNKNOWN_CA/ });
    expect(await attempt(url, tlsAs(certs.expired))).toMatchObject({
      kind: "closed",
      message: /CERTIFICATE_EXPIRED/,
    });
    expect(await attempt(url, { ca: ca.ca, username: "alice", password: "x" })).toMatchObject({
      kind: "closed",
      message: /CERTIFICATE_REQUIRED/,
    });
  });

  it("a CN with no user block logs in with no rights: nothing delivered to it, its publish dropped", async () => {
    const birch = await connected(tlsAs(certs.birch));
    const birchSaw: string[] = [];
    birch.on("message", (topic) => birchSaw.push(topic));
    // Mosquitto 2.0 grants the subscription and checks read access per message.
    await birch.subscribeAsync("greenwave/v1/main-street/#", { qos: 1 });
    const alice = await connected(tlsAs(certs.alice));
    const seen: string[] = [];
    alice.on("message", (topic) => seen.push(topic));
    await alice.subscribeAsync("greenwave/v1/main-street/+/status", { qos: 1 });
    await birch.publishAsync(OAK_STATUS, "{}", { qos: 1 });
    const elm = await connected(tlsAs(certs.elm));
    await elm.publishAsync(ELM_STATUS, "{}", { qos: 1 });
    await until("elm's status at alice", 3000, () => seen.length > 0);
    // A round trip on birch's own connection: anything sent to it before comes before this PUBACK.
    await birch.publishAsync(OAK_STATUS, "{}", { qos: 1 });
    expect(seen).toEqual([ELM_STATUS]);
    expect(birchSaw).toEqual([]);
    expect(log).toContain("u'gw-birch'");
  });
});
