import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, start } from "./processes.js";
import { keyringYaml } from "../support/keyring-files.js";

/**
 * Signed plans as an operator and a field engineer use them (issue 20, item 3): `greenwave keys
 * generate`, the public key copied into each gateway's trusted keys (keys/ beside its intersection
 * file, as /etc/greenwave/keys on an installed gateway), `greenwave plan sign`, `greenwave plan push`
 * (which sends PLAN.sig along), `keys list` and `keys revoke` — against `greenwave broker` and two
 * `greenwave gateway` processes.
 */

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

/** `greenwave broker` and a `greenwave gateway` per intersection of the fixture, each on the broker. */
async function brokerAndGateways(
  fixture: ReturnType<typeof writeCorridorFixture>,
  dataDir: string,
  more: (id: string) => string[],
) {
  const broker = start(["broker", "--port", "0"]);
  const url = (
    await until("the broker", 15_000, () => broker.lines.find((l) => l.msg === "broker listening"))
  ).url as string;
  const gateways = fixture.ids.map((id) =>
    start([
      ...["gateway", "--config", join(fixture.dir, `${id}.yaml`), "--data-dir", dataDir, "--broker", url],
      ...more(id),
    ]),
  );
  for (const gateway of gateways)
    await until("the gateway on the broker", 20_000, () =>
      gateway.lines.find((l) => l.msg === "connected to the broker"),
    );
  return { url, gateways };
}

describe("greenwave keys, plan sign and plan push against gateway processes with trusted keys", () => {
  it("an unsigned plan is refused with the reason, the signed one commits, and a revoked key's is refused", async () => {
    const fixture = writeCorridorFixture(2);
    dirs.push(fixture.dir);
    const own = mkdtempSync(join(tmpdir(), "greenwave-own-keys-"));
    const logDir = mkdtempSync(join(tmpdir(), "greenwave-signed-push-"));
    const dataDir = mkdtempSync(join(tmpdir(), "greenwave-signed-data-"));
    dirs.push(own, logDir, dataDir);

    const generated = cli(["keys", "generate", "--name", "alice", "--out", own]);
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stdout).toMatch(/generated Ed25519 key alice, fingerprint [0-9a-f]{64}/);
    expect(statSync(join(own, "alice.key")).mode & 0o777).toBe(0o600);
    // The field engineer copies the public key into the gateways' trusted keys (beside their config).
    const trusted = join(fixture.dir, "keys");
    mkdirSync(trusted);
    copyFileSync(join(own, "alice.pub"), join(trusted, "alice.pub"));

    // x2 names the directory; x1 finds it beside its intersection file.
    const { url, gateways } = await brokerAndGateways(fixture, dataDir, (id) =>
      id === "x2" ? ["--trusted-keys", trusted] : [],
    );
    for (const gateway of gateways) {
      const trust = await until("the gateway's word on its trusted keys", 20_000, () =>
        gateway.lines.find((l) => String(l.msg).includes("trusted key")),
      );
      expect(trust.msg).toMatch(
        /plans and schedules must be signed by one of 1 trusted key in .*keys \(alice\)/,
      );
    }

    const plan = join(fixture.plans, "next.yaml");
    const push = (file: string) =>
      cli([
        ...["plan", "push", "--corridor", fixture.corridor, "--plan", file, "--broker", url],
        ...["--as", "alice", "--data-dir", logDir, "--lead-s", "3", "--ack-timeout-s", "3"],
      ]);
    const unsigned = push(plan);
    expect(unsigned.status, unsigned.stdout + unsigned.stderr).toBe(1);
    expect(unsigned.stdout).toContain("ABORTED: next v1");
    expect(unsigned.stdout).toMatch(
      /reason: x\d voted no: plan next version 1 is not signed, and this gateway takes only changes signed by a trusted key/,
    );

    const signed = cli(["plan", "sign", plan, "--key", join(own, "alice.key")]);
    expect(signed.status, signed.stderr).toBe(0);
    expect(signed.stdout).toContain(`signed plan next v1`);
    expect(JSON.parse(readFileSync(`${plan}.sig`, "utf8"))).toMatchObject({
      kind: "greenwave-signature",
      signer: "alice",
      signed: { corridor: "test-corridor", kind: "plan", id: "next", version: 1 },
    });
    const committed = push(plan);
    expect(committed.status, committed.stdout + committed.stderr).toBe(0);
    expect(committed.stdout).toContain("COMMITTED: next v1");

    // A signature kept beside another plan is refused by the command itself, before any lease.
    const shifted = join(fixture.plans, "shifted.yaml");
    copyFileSync(`${plan}.sig`, `${shifted}.sig`);
    const moved = push(shifted);
    expect(moved.status).toBe(1);
    expect(moved.stderr).toMatch(
      /signs plan next v1 .* not this plan shifted v1 .* its id, digest differ; sign this file again/,
    );

    const listed = cli(["keys", "list", "--dir", trusted]);
    expect(listed.stdout).toMatch(/^alice\s+[0-9a-f]{64}\s+trusted/m);
    for (const dir of [trusted]) {
      const revoked = cli(["keys", "revoke", "alice", "--dir", dir]);
      expect(revoked.status, revoked.stderr).toBe(0);
    }
    expect(cli(["keys", "list", "--dir", trusted]).stdout).toMatch(/^alice\s+[0-9a-f]{64}\s+REVOKED/m);
    expect(cli(["plan", "sign", shifted, "--key", join(own, "alice.key")]).status).toBe(0);
    const afterRevocation = push(shifted);
    expect(afterRevocation.status).toBe(1);
    expect(afterRevocation.stdout).toMatch(
      /voted no: plan shifted version 1 is signed by alice \(key [0-9a-f]{16}\), which is revoked here/,
    );

    // A schedule is signed with every plan it names (the bundle schedule push sends).
    const scheduleSig = join(own, "main-street.yaml.sig");
    const scheduleSigned = cli([
      ...["schedule", "sign", "config/schedules/main-street.yaml", "--key", join(own, "alice.key")],
      ...["--out", scheduleSig],
    ]);
    expect(scheduleSigned.status, scheduleSigned.stderr).toBe(0);
    expect(JSON.parse(readFileSync(scheduleSig, "utf8"))).toMatchObject({
      signed: { corridor: "main-street", kind: "schedule", id: "main-street-weekly", version: 1 },
    });

    // A --trusted-keys directory that does not exist is a typo: refused before anything starts.
    const typo = cli([
      ...["gateway", "--config", join(fixture.dir, "x1.yaml"), "--data-dir", dataDir],
      ...["--trusted-keys", join(fixture.dir, "no-such-keys")],
    ]);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("--trusted-keys");
    expect(existsSync(join(fixture.dir, "no-such-keys"))).toBe(false);

    // No trusted keys at all: unsigned plans are taken, and the gateway says so loudly at start-up.
    const open = writeCorridorFixture(1);
    dirs.push(open.dir);
    const loose = start(["gateway", "--config", join(open.dir, "x1.yaml"), "--data-dir", open.dir]);
    const warning = await until("the warning", 20_000, () =>
      loose.lines.find((l) => String(l.msg).startsWith("UNSIGNED PLANS ACCEPTED")),
    );
    expect(warning.level).toBe(40);
    expect(warning.msg).toContain("takes unsigned plans and schedules from anyone who may send it a PREPARE");
  }, 120_000);

  it("keys sign and keys push rotate the gateways' trust from alice to bob; keys trust shows it at the cabinet", async () => {
    const fixture = writeCorridorFixture(2);
    dirs.push(fixture.dir);
    const own = mkdtempSync(join(tmpdir(), "greenwave-own-keys-"));
    const logDir = mkdtempSync(join(tmpdir(), "greenwave-keyring-push-"));
    const dataDir = mkdtempSync(join(tmpdir(), "greenwave-keyring-data-"));
    dirs.push(own, logDir, dataDir);
    for (const name of ["alice", "bob"])
      expect(cli(["keys", "generate", "--name", name, "--out", own]).status).toBe(0);
    const trusted = join(fixture.dir, "keys");
    mkdirSync(trusted);
    copyFileSync(join(own, "alice.pub"), join(trusted, "alice.pub"));
    const { url } = await brokerAndGateways(fixture, dataDir, () => []);

    // The keyring: bob trusted, alice revoked; written by hand, as docs/threat-model.md shows.
    const alice = JSON.parse(cli(["keys", "list", "--dir", own, "--json"]).stdout) as {
      keys: { name: string; fingerprint: string }[];
    };
    const aliceFingerprint = alice.keys.find((k) => k.name === "alice")?.fingerprint ?? "";
    const keyring = join(fixture.dir, "keyring.yaml");
    writeFileSync(
      keyring,
      keyringYaml({
        corridor: "test-corridor",
        version: 1,
        keys: [{ name: "bob", publicKeyPem: readFileSync(join(own, "bob.pub"), "utf8") }],
        revoked: [{ fingerprint: aliceFingerprint, name: "alice" }],
      }),
    );
    const checked = cli(["config", "check", keyring]);
    expect(checked.status, checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(
      /^ok {2}keyring v1 of corridor test-corridor: 1 key \(bob\), 1 revoked, threshold 1; digest [0-9a-f]{12}/m,
    );
    const pushKeyring = () =>
      cli([
        ...["keys", "push", "--keyring", keyring, "--corridor", fixture.corridor, "--broker", url],
        ...["--as", "alice", "--data-dir", logDir, "--lead-s", "3", "--ack-timeout-s", "3"],
      ]);
    const unsigned = pushKeyring();
    expect(unsigned.status).toBe(1);
    expect(unsigned.stderr).toMatch(/no signatures for keyring v1 .*greenwave keys sign/);
    const signed = cli(["keys", "sign", keyring, "--key", join(own, "alice.key")]);
    expect(signed.status, signed.stderr).toBe(0);
    expect(signed.stdout).toMatch(/signed keyring v1 .* as alice .*holds 1 signature/);
    const pushed = pushKeyring();
    expect(pushed.status, pushed.stdout + pushed.stderr).toBe(0);
    expect(pushed.stdout).toContain("COMMITTED: keyring v1");

    const trust = cli(["keys", "trust", "--intersection", "x1", "--data-dir", dataDir, "--dir", trusted]);
    expect(trust.status, trust.stderr).toBe(0);
    expect(trust.stdout).toMatch(/keyring v1 of corridor test-corridor .*threshold 1/);
    expect(trust.stdout).toMatch(/^alice\s+[0-9a-f]{64}\s+REVOKED\s+\(directory\)/m);
    expect(trust.stdout).toMatch(/^bob\s+[0-9a-f]{64}\s+trusted\s+\(keyring\)/m);

    const plan = join(fixture.plans, "next.yaml");
    const pushPlan = () =>
      cli([
        ...["plan", "push", "--corridor", fixture.corridor, "--plan", plan, "--broker", url],
        ...["--as", "alice", "--data-dir", logDir, "--lead-s", "3", "--ack-timeout-s", "3"],
      ]);
    expect(cli(["plan", "sign", plan, "--key", join(own, "alice.key")]).status).toBe(0);
    const byAlice = pushPlan();
    expect(byAlice.status).toBe(1);
    expect(byAlice.stdout).toMatch(/signed by alice .*which is revoked here/);
    expect(cli(["plan", "sign", plan, "--key", join(own, "bob.key")]).status).toBe(0);
    const byBob = pushPlan();
    expect(byBob.status, byBob.stdout + byBob.stderr).toBe(0);
    expect(byBob.stdout).toContain("COMMITTED: next v1");
  }, 120_000);
});
