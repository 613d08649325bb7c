import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startBroker } from "../../gateway/broker/broker.js";
import { loadCorridor, loadPlan } from "../../gateway/config/load.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import type { SignedSubject, WireSignature } from "../../gateway/core/corridor/plan-signature.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/node/corridor-participant.js";
import {
  generateSigningKey,
  loadSigningKey,
  revokeKey,
  signSubject,
} from "../../gateway/operator/plan-signing.js";
import { pushSchedule } from "../../gateway/operator/plan-push.js";
import { OperatorClient } from "../../gateway/operator/operator-client.js";
import { loadSchedule } from "../../gateway/config/load-schedule.js";
import { scheduleSubject } from "../../gateway/cli/keys-command.js";
import { coordinatePush } from "../../gateway/shell/corridor/coordinator-host.js";
import { PlanTrust } from "../../gateway/shell/corridor/plan-trust.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import { startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";
import { Cleanups, FAST, pushRig, TEST_CORRIDOR } from "../support/push-rig.js";

/**
 * Signed plans over the real embedded broker (aedes on loopback, with users and the ACL) and four real
 * gateways on their SQLite stores, each holding the same trusted keys (issue 20, item 3): an unsigned
 * plan, a plan signed by a key nobody trusts, a signature moved from another plan, a revoked key and a
 * gateway's own credentials coordinating an unsigned plan are all refused, every gateway saying why;
 * the properly signed plan commits.
 */
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const CORRIDOR = TEST_CORRIDOR;

function sign(subject: SignedSubject, keyFile: string): WireSignature {
  const file = signSubject(subject, loadSigningKey(keyFile), Date.now());
  return { signer: file.signer, key: file.key, value: file.value };
}

/** The rig's corridor, every gateway trusting alice's public key (one shared directory). */
async function world() {
  const own = cleanups.tempDir("greenwave-signing-keys-");
  const trusted = cleanups.tempDir("greenwave-trusted-keys-");
  const alice = generateSigningKey("alice", own);
  const mallory = generateSigningKey("mallory", own);
  copyFileSync(alice.publicKeyFile, join(trusted, "alice.pub"));
  const rig = await pushRig(cleanups, {
    corridorSettings: () => ({ ...DEFAULT_CORRIDOR_SETTINGS, planTrust: new PlanTrust(trusted, CORRIDOR) }),
  });
  const subject = (name: string): SignedSubject => {
    const raw = rig.plan(name).raw;
    return { corridor: CORRIDOR, kind: "plan", id: raw.id, version: raw.version, digest: planDigest(raw) };
  };
  return { ...rig, trusted, alice, mallory, subject };
}

describe("signed plans over the embedded broker, 4 gateways with trusted keys", () => {
  it("refuses unsigned, untrusted, moved and revoked signatures with the reason; commits the signed plan", async () => {
    const w = await world();
    const pending = () => [...w.corridor.nodes.values()].map((n) => n.runner.controller.seq.pending.length);

    const unsigned = await w.push("next");
    await w.refusedEverywhere(
      unsigned,
      /^plan next version 1 is not signed, and this gateway takes only changes signed by a trusted key .*: sign it \(greenwave plan sign FILE --key KEY\)/,
    );

    const untrusted = await w.push("next", { signature: sign(w.subject("next"), w.mallory.privateKeyFile) });
    await w.refusedEverywhere(untrusted, /signed by mallory .* a key this gateway does not trust/);

    // alice's real signature of another plan (same corridor, same version), sent with this one.
    const moved = await w.push("next", { signature: sign(w.subject("shifted"), w.alice.privateKeyFile) });
    await w.refusedEverywhere(moved, /signature by alice .* does not verify for plan next version 1/);
    expect(pending()).toEqual([0, 0, 0, 0]);

    const signed = await w.push("next", { signature: sign(w.subject("next"), w.alice.privateKeyFile) });
    expect(signed.outcome, signed.reason ?? "").toBe("committed");
    expect(signed.votes.map((v) => v.vote)).toEqual(["yes", "yes", "yes", "yes"]);
    expect(pending()).toEqual([1, 1, 1, 1]);

    // Revoked on the gateways (their shared directory here): refused from the next PREPARE on.
    revokeKey("alice", w.trusted, Date.now());
    const revoked = await w.push("shifted", {
      signature: sign(w.subject("shifted"), w.alice.privateKeyFile),
    });
    await w.refusedEverywhere(revoked, /signed by alice .* revoked here \(alice\)/);
  }, 60_000);

  it("a gateway's own credentials coordinating an unsigned plan get no from every other gateway", async () => {
    const w = await world();
    // x1's credentials, as a stolen gateway credential would use them: x1 coordinates (on the wire as
    // x1, which the ACL allows it), leases granted, PREPARE with an unsigned plan.
    const host = await w.stolenCoordinator("x1");
    const raw = w.plan("next").raw;
    const result = await coordinatePush(host, {
      name: "x1",
      timeReference: loadCorridor(w.fixture.corridor).timeReference,
      change: { kind: "plan", planFile: raw, digest: planDigest(raw) },
      atWallMs: null,
      leadMs: 3000,
      ackTimeoutMs: 2000,
    });
    await w.refusedEverywhere(result, /is not signed/);
    expect([...w.corridor.nodes.values()].map((n) => n.runner.controller.seq.pending.length)).toEqual([
      0, 0, 0, 0,
    ]);
  }, 60_000);

  it("the example corridor: a schedule (with its plans) is signed like a plan, and plan push --via sends the signature on", async () => {
    const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
    cleanups.defer(() => broker.close());
    const own = cleanups.tempDir("greenwave-signing-keys-");
    const trusted = cleanups.tempDir("greenwave-trusted-keys-");
    const alice = generateSigningKey("alice", own);
    copyFileSync(alice.publicKeyFile, join(trusted, "alice.pub"));
    const corridor = await startCorridorNodes(broker.url, {
      corridorSettings: () => ({
        ...DEFAULT_CORRIDOR_SETTINGS,
        planTrust: new PlanTrust(trusted, "main-street"),
      }),
    });
    cleanups.defer(() => corridor.stop());
    await until("every gateway online", 10_000, () =>
      [...corridor.nodes.values()].every((n) => n.mqttConnected),
    );
    const loaded = loadCorridor("config/corridor.yaml");
    const scheduleFile = "config/schedules/main-street.yaml";
    const store = CoordinatorStore.open(cleanups.tempDir("greenwave-coordinator-"));
    cleanups.defer(() => store.close());
    const pushIt = (signature?: WireSignature) =>
      pushSchedule({
        url: broker.url,
        name: "alice",
        corridor: loaded,
        schedule: loadSchedule(scheduleFile, loaded),
        atWallMs: null,
        leadMs: 3000,
        store,
        ackTimeoutMs: 3000,
        config: FAST,
        ...(signature ? { signature } : {}),
      });
    const unsigned = await pushIt();
    expect(unsigned.outcome).toBe("aborted");
    expect(unsigned.reason).toMatch(
      /voted no: schedule main-street-weekly version 1 is not signed.*greenwave schedule sign FILE/,
    );
    const subject = scheduleSubject(scheduleFile, undefined);
    expect(subject).toMatchObject({ corridor: "main-street", kind: "schedule", id: "main-street-weekly" });
    // A plan's signature with the same id and version is no schedule's: the kind is signed too.
    const asPlan = await pushIt(sign({ ...subject, kind: "plan" }, alice.privateKeyFile));
    expect(asPlan.reason).toMatch(/does not verify for schedule main-street-weekly version 1/);
    const signed = await pushIt(sign(subject, alice.privateKeyFile));
    expect(signed.outcome, signed.reason ?? "").toBe("committed");

    // plan push --via: the plan-push command carries the signature; elm coordinates and sends it on.
    const op = await OperatorClient.connect({ url: broker.url, timeoutMs: 5000 });
    cleanups.defer(() => op.close());
    const planFile = loadPlan("config/plans/am-peak.yaml").raw;
    const body = { by: "alice", planFile, atWallMs: null, leadMs: 3000, ackTimeoutMs: 3000 };
    const via = async (extra: object) => {
      const reply = await op.command("main-street", "elm", "plan-push", { ...body, ...extra }, 30_000);
      expect(reply.ok, JSON.stringify(reply.error)).toBe(true);
      return (reply.result as { push: { outcome: string; reason: string | null } }).push;
    };
    expect((await via({})).reason).toMatch(/plan am-peak version 1 is not signed/);
    const planSigned = sign(
      {
        corridor: "main-street",
        kind: "plan",
        id: "am-peak",
        version: planFile.version,
        digest: planDigest(planFile),
      },
      alice.privateKeyFile,
    );
    expect(await via({ signature: planSigned })).toMatchObject({ outcome: "committed" });
  }, 60_000);
});
