import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadIntersectionSetup, loadPlan } from "../../gateway/config/load.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import type { SignedSubject, WireSignature } from "../../gateway/core/corridor/plan-signature.js";
import { compiledPlanCheck } from "../../gateway/node/compiled-plan-check.js";
import { storeParticipantDisk } from "../../gateway/node/corridor-participant.js";
import {
  generateSigningKey,
  loadSigningKey,
  readSignatureFile,
  revokeKey,
  signatureForPush,
  signSubject,
} from "../../gateway/operator/plan-signing.js";
import { type CorridorBody, corridorBodySchema } from "../../gateway/protocol/corridor-messages.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/shell/corridor/participant-ports.js";
import { ParticipantShell } from "../../gateway/shell/corridor/participant-shell.js";
import { PlanTrust } from "../../gateway/shell/corridor/plan-trust.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";

/**
 * Signed plans (issue 20, item 3): a signature binds a plan's content digest, its id and version and
 * its corridor; a gateway with trusted keys takes only what a trusted, unrevoked key signed, and says
 * which of the cases a refusal is.
 */
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An operator's keys (alice, bob) and a gateway's trusted-keys directory holding alice's public key. */
function keys() {
  const own = tempDir("greenwave-keys-");
  const trusted = tempDir("greenwave-trusted-");
  const alice = generateSigningKey("alice", own);
  const bob = generateSigningKey("bob", own);
  copyFileSync(alice.publicKeyFile, join(trusted, "alice.pub"));
  return { own, trusted, alice, bob };
}

const SUBJECT: SignedSubject = {
  corridor: "test-corridor",
  kind: "plan",
  id: "next",
  version: 1,
  digest: "a".repeat(64),
};

function wire(subject: SignedSubject, keyFile: string): WireSignature {
  const file = signSubject(subject, loadSigningKey(keyFile), Date.now());
  return { signer: file.signer, key: file.key, value: file.value };
}

describe("keys and signatures", () => {
  it("generate writes an Ed25519 pair, the private key 0600, and never overwrites one", () => {
    const { own, alice } = keys();
    expect(statSync(alice.privateKeyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(alice.publicKeyFile, "utf8")).toContain("BEGIN PUBLIC KEY");
    expect(alice.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(() => generateSigningKey("alice", own)).toThrow(/exists already/);
    // A private key others may read is refused, as ssh refuses one.
    chmodSync(alice.privateKeyFile, 0o644);
    expect(() => loadSigningKey(alice.privateKeyFile)).toThrow(/readable by others.*chmod 600/);
  });

  it("a trusted key's signature verifies; moved to another plan, version or corridor, or over other content, it does not", () => {
    const { trusted, alice } = keys();
    const trust = new PlanTrust(trusted, "test-corridor");
    const signature = wire(SUBJECT, alice.privateKeyFile);
    const { corridor: _c, ...own } = SUBJECT;
    expect(trust.check(own, signature)).toEqual({ ok: true });
    for (const moved of [
      { ...own, id: "east" },
      { ...own, version: 2 },
      { ...own, digest: "b".repeat(64) },
      { ...own, kind: "schedule" as const },
    ]) {
      const verdict = trust.check(moved, signature);
      expect(verdict.ok).toBe(false);
      expect(!verdict.ok && verdict.reason).toMatch(/does not verify .* sign this file again/);
    }
    // The same signature at a gateway of another corridor.
    const elsewhere = new PlanTrust(trusted, "other-corridor").check(own, signature);
    expect(!elsewhere.ok && elsewhere.reason).toMatch(/does not verify .* on corridor other-corridor/);
    // A signature value tampered with.
    const flipped = Buffer.from(signature.value, "base64");
    flipped[0] = (flipped[0] as number) ^ 1;
    const tampered = trust.check(own, { ...signature, value: flipped.toString("base64") });
    expect(tampered.ok).toBe(false);
  });

  it("unsigned, unknown and revoked keys are refused with what to do; no keys at all takes anything", () => {
    const { own, trusted, alice, bob } = keys();
    const { corridor: _c, ...own1 } = SUBJECT;
    const trust = new PlanTrust(trusted, "test-corridor");
    const unsigned = trust.check(own1, null);
    expect(!unsigned.ok && unsigned.reason).toMatch(/plan next version 1 is not signed.*greenwave plan sign/);
    const unknown = trust.check(own1, wire(SUBJECT, bob.privateKeyFile));
    expect(!unknown.ok && unknown.reason).toMatch(/signed by bob .* a key this gateway does not trust/);
    // A signer who claims a trusted name with another key is still unknown: keys go by fingerprint.
    const claimed = trust.check(own1, { ...wire(SUBJECT, bob.privateKeyFile), signer: "alice" });
    expect(!claimed.ok && claimed.reason).toMatch(/does not trust/);

    expect(revokeKey("alice", trusted, Date.now())).toMatchObject({ already: false });
    expect(revokeKey("alice", trusted, Date.now())).toMatchObject({ already: true });
    const revoked = trust.check(own1, wire(SUBJECT, alice.privateKeyFile));
    expect(!revoked.ok && revoked.reason).toMatch(/signed by alice .* revoked here/);
    // Every key revoked is not "no keys": the check stays on, even with the key file removed.
    rmSync(join(trusted, "alice.pub"));
    expect(trust.check(own1, null).ok).toBe(false);

    expect(new PlanTrust(null, "test-corridor").check(own1, null)).toEqual({ ok: true });
    const empty = tempDir("greenwave-empty-");
    expect(new PlanTrust(empty, "test-corridor").state().kind).toBe("off");
    // A directory that cannot be read trusts nothing.
    writeFileSync(join(own, "broken.pub"), "not a key");
    const broken = new PlanTrust(own, "test-corridor").check(own1, wire(SUBJECT, alice.privateKeyFile));
    expect(!broken.ok && broken.reason).toMatch(
      /cannot read its trusted keys .*broken\.pub is not a PEM public key/,
    );
    const gone = new PlanTrust(join(empty, "missing"), "test-corridor").check(own1, null);
    expect(!gone.ok && gone.reason).toMatch(/cannot read its trusted keys/);
  });

  it("plan push refuses a signature file made for other content before any lease is taken", () => {
    const { own, alice } = keys();
    const file = join(own, "next.yaml.sig");
    writeFileSync(file, JSON.stringify(signSubject(SUBJECT, loadSigningKey(alice.privateKeyFile), 0)));
    const read = readSignatureFile(file);
    expect(signatureForPush(read, file, SUBJECT)).toMatchObject({ signer: "alice", key: alice.fingerprint });
    expect(() => signatureForPush(read, file, { ...SUBJECT, version: 2 })).toThrow(/its version differ/);
    expect(() => signatureForPush(read, file, { ...SUBJECT, corridor: "x", digest: "c".repeat(64) })).toThrow(
      /its corridor, digest differ; sign this file again/,
    );
  });

  it("the PREPARE's signature field is read strictly", () => {
    const prepare = {
      type: "prepare",
      txnId: "t",
      token: 1,
      participants: ["x1"],
      plan: { id: "next", version: 1 },
      planFile: {},
      activationWallMs: 1,
    };
    expect(corridorBodySchema.safeParse(prepare).success).toBe(true);
    const signature = { signer: "alice", key: "a".repeat(64), value: `${"A".repeat(86)}==` };
    expect(corridorBodySchema.safeParse({ ...prepare, signature }).success).toBe(true);
    for (const bad of [
      { ...signature, value: "short" },
      { ...signature, key: "A".repeat(64) },
      { ...signature, extra: 1 },
    ])
      expect(corridorBodySchema.safeParse({ ...prepare, signature: bad }).success).toBe(false);
  });
});

describe("a participant with trusted keys, through the interpreter the gateway runs", () => {
  function participant(trusted: string | null) {
    const written = writeCorridorFixture(2, { devicePort: () => 1502 });
    cleanups.push(() => rmSync(written.dir, { recursive: true, force: true }));
    const setup = loadIntersectionSetup(join(written.dir, "x1.yaml"));
    const plan = loadPlan(join(written.dir, "plans/next.yaml")).raw;
    const storeDir = tempDir("greenwave-signed-store-");
    const store = GatewayStore.open(storeDir);
    cleanups.push(() => store.close());
    const clock = { monoMs: 1_000, wallMs: 1_800_000_000_000 };
    const sent: { to: string; body: CorridorBody }[] = [];
    const shell = new ParticipantShell({
      me: "x1",
      disk: storeParticipantDisk(store),
      network: { send: (to, body) => sent.push({ to, body }) },
      clock: { now: () => ({ ...clock }) },
      planCheck: compiledPlanCheck(setup, createLogger("test", "silent")),
      host: {
        schedulePlan: () => {},
        planRefusal: () => null,
        withdrawPlan: () => {},
        audit: () => {},
        changed: () => {},
      },
      log: { warn: () => {}, error: () => {} },
      settings: { ...DEFAULT_CORRIDOR_SETTINGS, planTrust: new PlanTrust(trusted, "test-corridor") },
    });
    // A lease serves the transaction it was taken for: each PREPARE under a lease of its own.
    const leaseFor = (txnId: string): number => {
      const held = shell.lock;
      const op = { from: "@op", to: "x1", sentAtWallMs: clock.wallMs } as const;
      if (held) shell.onMessage({ ...op, body: { type: "release", token: held.token } });
      shell.onMessage({ ...op, body: { type: "acquire", requestId: `${txnId}/0/x1`, ttlMs: 15_000 } });
      return shell.lock?.token as number;
    };
    let n = 0;
    const prepare = (planFile: unknown, signature?: WireSignature) => {
      const token = leaseFor(`t${n + 1}`);
      shell.onMessage({
        from: "@op",
        to: "x1",
        sentAtWallMs: clock.wallMs,
        body: {
          type: "prepare",
          txnId: `t${++n}`,
          token,
          participants: ["x1", "x2"],
          plan: { id: "next", version: 1 },
          planFile,
          activationWallMs: clock.wallMs + 60_000,
          ...(signature ? { signature } : {}),
        },
      });
      return sent.filter((m) => m.body.type === "vote").at(-1)?.body as Extract<
        CorridorBody,
        { type: "vote" }
      >;
    };
    const subject: SignedSubject = {
      corridor: "test-corridor",
      kind: "plan",
      id: "next",
      version: 1,
      digest: planDigest(plan),
    };
    return { plan, prepare, subject };
  }

  it("votes no on unsigned, wrongly signed and tampered content, saying why; yes on the signed plan", () => {
    const { trusted, alice, bob } = keys();
    const p = participant(trusted);
    expect(p.prepare(p.plan).reason).toContain("is not signed");
    expect(p.prepare(p.plan, wire(p.subject, bob.privateKeyFile)).reason).toContain("does not trust");
    // Signed, then edited: the gateway's own digest of what came is not what was signed.
    const tampered = { ...p.plan, description: "edited after signing" };
    const signed = wire(p.subject, alice.privateKeyFile);
    expect(p.prepare(tampered, signed).reason).toMatch(/does not verify for plan next version 1/);
    const vote = p.prepare(p.plan, signed);
    expect(vote).toMatchObject({ yes: true, reason: null });
  });

  it("without trusted keys takes an unsigned plan", () => {
    const p = participant(null);
    expect(p.prepare(p.plan)).toMatchObject({ yes: true });
  });

  it("a revoked key: refused from the next PREPARE on, without a restart", () => {
    const { trusted, alice } = keys();
    mkdirSync(join(trusted, "sub"), { recursive: true }); // other entries in the directory are ignored
    const p = participant(trusted);
    revokeKey("alice", trusted, Date.now());
    expect(p.prepare(p.plan, wire(p.subject, alice.privateKeyFile)).reason).toMatch(/revoked here/);
  });
});
