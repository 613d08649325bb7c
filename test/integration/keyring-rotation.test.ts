import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { startBroker } from "../../gateway/broker/broker.js";
import { type BrokerUser, hashPassword } from "../../gateway/broker/users.js";
import { loadCorridor, loadPlan } from "../../gateway/config/load.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import { DEFAULT_COORDINATOR_CONFIG } from "../../gateway/core/corridor/coordinator.js";
import { keyringSubject } from "../../gateway/core/corridor/keyring.js";
import type { WireSignature } from "../../gateway/core/corridor/plan-signature.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/node/corridor-participant.js";
import { type LoadedKeyring, loadKeyring } from "../../gateway/operator/keyring-file.js";
import { generateSigningKey, loadSigningKey, signSubject } from "../../gateway/operator/plan-signing.js";
import { pushKeyring, pushPlan } from "../../gateway/operator/plan-push.js";
import { inboxFilter, parseCorridorMessage } from "../../gateway/protocol/corridor-messages.js";
import { CoordinatorHost, coordinatePush } from "../../gateway/shell/corridor/coordinator-host.js";
import { PlanTrust } from "../../gateway/shell/corridor/plan-trust.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";

/**
 * Trusted keys rotated by a committed corridor change (issue 20, item 3; core/corridor/keyring.ts), over
 * the real embedded broker (users and ACL) and four real gateways on their SQLite stores, each starting
 * with alice's public key in its keys directory: a keyring signed by alice that trusts bob and revokes
 * alice commits everywhere, after which bob's plans are taken and alice's refused, also across a restart
 * and on a gateway whose store was lost (the same keyring pushed again); keyrings signed by a key nobody
 * trusts, rolled back, under a threshold, or locking everyone out are refused by every gateway, and so
 * is one a stolen gateway credential coordinates.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FAST = { requestTimeoutMs: 1000, voteTimeoutMs: 2000, maxAcquireAttempts: 3, resendMs: 300 };
const PASSWORD = "rotate the keys";
const CORRIDOR = "test-corridor";

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function world() {
  const fixture = writeCorridorFixture(4);
  cleanups.push(() => rmSync(fixture.dir, { recursive: true, force: true }));
  const hash = await hashPassword(PASSWORD);
  const users = new Map<string, BrokerUser>([
    ["alice", { passwordHash: hash, principal: { role: "operator", username: "alice" } }],
    ...fixture.ids.map((id): [string, BrokerUser] => [
      `gw-${id}`,
      {
        passwordHash: hash,
        principal: { role: "gateway", username: `gw-${id}`, corridor: CORRIDOR, intersection: id },
      },
    ]),
  ]);
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users });
  cleanups.push(() => broker.close());
  const own = tempDir("greenwave-signing-keys-");
  const trusted = tempDir("greenwave-trusted-keys-");
  const keys = {
    alice: generateSigningKey("alice", own),
    bob: generateSigningKey("bob", own),
    carol: generateSigningKey("carol", own),
    mallory: generateSigningKey("mallory", own),
  };
  // Every gateway's keys directory holds alice's public key only: the trust put there by hand.
  copyFileSync(keys.alice.publicKeyFile, join(trusted, "alice.pub"));
  const corridor = await startCorridorNodes(broker.url, {
    corridorFile: fixture.corridor,
    credentials: (id) => ({ username: `gw-${id}`, password: PASSWORD }),
    corridorSettings: () => ({ ...DEFAULT_CORRIDOR_SETTINGS, planTrust: new PlanTrust(trusted, CORRIDOR) }),
  });
  cleanups.push(() => corridor.stop());
  await until("every gateway online", 10_000, () =>
    [...corridor.nodes.values()].every((node) => node.mqttConnected),
  );
  const coordinatorDir = tempDir("greenwave-coordinator-");
  const keyringDir = tempDir("greenwave-keyrings-");

  /** A keyring file: these keys trusted, these revoked (by fingerprint), this threshold. */
  const keyring = (
    version: number,
    trust: (keyof typeof keys)[],
    revoke: (keyof typeof keys)[] = [],
    threshold = 1,
  ): LoadedKeyring => {
    const file = join(keyringDir, `keyring-v${version}-${trust.join("-")}-${threshold}.yaml`);
    const pem = (name: keyof typeof keys) =>
      readFileSync(keys[name].publicKeyFile, "utf8")
        .trim()
        .split("\n")
        .map((line) => `      ${line}`)
        .join("\n");
    writeFileSync(
      file,
      [
        "kind: keyring",
        `corridor: ${CORRIDOR}`,
        `version: ${version}`,
        `threshold: ${threshold}`,
        "keys:",
        ...trust.map((name) => `  - name: ${name}\n    publicKey: |\n${pem(name)}`),
        "revoked:",
        ...(revoke.length === 0 ? ["  []"] : []),
        ...revoke.map((name) => `  - { fingerprint: ${keys[name].fingerprint}, name: ${name} }`),
        "",
      ].join("\n"),
    );
    return loadKeyring(file, CORRIDOR);
  };
  const sign = (loaded: LoadedKeyring, ...signers: (keyof typeof keys)[]): WireSignature[] =>
    signers.map((name) => {
      const file = signSubject(
        keyringSubject(loaded.keyring),
        loadSigningKey(keys[name].privateKeyFile),
        Date.now(),
      );
      return { signer: file.signer, key: file.key, value: file.value };
    });
  const withCoordinator = async <T>(run: (store: CoordinatorStore) => Promise<T>): Promise<T> => {
    const store = CoordinatorStore.open(coordinatorDir);
    try {
      return await run(store);
    } finally {
      store.close();
    }
  };
  const common = {
    url: broker.url,
    username: "alice",
    password: PASSWORD,
    name: "alice",
    atWallMs: null,
    leadMs: 3000,
    ackTimeoutMs: 3000,
    config: FAST,
  };
  const push = (loaded: LoadedKeyring, signatures: WireSignature[]) =>
    withCoordinator((store) =>
      pushKeyring({
        ...common,
        corridor: loadCorridor(fixture.corridor),
        keyring: loaded,
        signatures,
        store,
      }),
    );
  /** A plan of the fixture pushed with `signer`'s signature. */
  const pushPlanSignedBy = (name: string, signer: keyof typeof keys) => {
    const plan = loadPlan(join(fixture.plans, `${name}.yaml`));
    const subject = {
      corridor: CORRIDOR,
      kind: "plan" as const,
      id: plan.raw.id,
      version: plan.raw.version,
      digest: planDigest(plan.raw),
    };
    const file = signSubject(subject, loadSigningKey(keys[signer].privateKeyFile), Date.now());
    return withCoordinator((store) =>
      pushPlan({
        ...common,
        corridor: loadCorridor(fixture.corridor),
        plan,
        store,
        signature: { signer: file.signer, key: file.key, value: file.value },
      }),
    );
  };
  const versionsInForce = () =>
    [...corridor.stores.values()].map(
      (store) => (store.committedKeyring() as { version?: number } | null)?.version ?? null,
    );
  return { fixture, broker, corridor, keys, keyring, sign, push, pushPlanSignedBy, versionsInForce };
}

type World = Awaited<ReturnType<typeof world>>;

/** Aborted, and every gateway voted no for this reason (read from each one's audit trail). */
async function refusedEverywhere(
  w: World,
  result: { txnId: string; outcome: string; reason: string | null },
  reason: RegExp,
): Promise<void> {
  expect(result.outcome).toBe("aborted");
  expect(result.reason?.replace(/^\S+ voted no: /, "")).toMatch(reason);
  const refusals = () =>
    [...w.corridor.stores.values()].map(
      (store) =>
        store.events(0, 10_000).find((e) => e.type === "txn-vote-no" && e.detail.txnId === result.txnId)
          ?.detail.reason,
    );
  await until("every gateway's no vote in its audit trail", 5000, () =>
    refusals().every((r) => r !== undefined),
  );
  for (const r of refusals()) expect(String(r)).toMatch(reason);
}

describe("the corridor's keyring: trusted keys rotated by a committed change", () => {
  it("alice rotates to bob: committed everywhere, then bob's plans are taken and alice's refused, also after a restart and on a gateway that lost its store", async () => {
    const w = await world();
    const v1 = w.keyring(1, ["bob"], ["alice"]);
    const rotated = await w.push(v1, w.sign(v1, "alice"));
    expect(rotated.outcome, rotated.reason ?? "").toBe("committed");
    expect(rotated.plan).toMatchObject({ kind: "keyring", version: 1, digest: v1.keyring.digest });
    await until("every gateway took keyring v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    for (const store of w.corridor.stores.values())
      expect(store.events(0, 10_000).some((e) => e.type === "keyring-adopted")).toBe(true);

    const byAlice = await w.pushPlanSignedBy("next", "alice");
    await refusedEverywhere(w, byAlice, /signed by alice .*which is revoked here/);
    const byBob = await w.pushPlanSignedBy("next", "bob");
    expect(byBob.outcome, byBob.reason ?? "").toBe("committed");

    // A restart keeps the keyring (the store's, not the directory's, which still trusts alice only).
    await w.corridor.restart("x2");
    await until("x2 online again", 10_000, () => w.corridor.nodes.get("x2")?.mqttConnected === true);
    const afterRestart = await w.pushPlanSignedBy("shifted", "alice");
    await refusedEverywhere(w, afterRestart, /revoked here/);

    // A gateway that lost its store (replaced) trusts its directory only, alice: it refuses bob's plans
    // until the same keyring is pushed again, which the others take as the one in force, unchanged.
    await w.corridor.kill("x3");
    rmSync(join(w.corridor.dataDir, "x3"), { recursive: true, force: true });
    await w.corridor.restart("x3");
    await until("x3 online again", 10_000, () => w.corridor.nodes.get("x3")?.mqttConnected === true);
    expect(w.corridor.stores.get("x3")?.committedKeyring()).toBeNull();
    const beforeRepush = await w.pushPlanSignedBy("shifted", "bob");
    expect(beforeRepush.outcome).toBe("aborted");
    expect(beforeRepush.reason).toMatch(/x3 voted no: .*signed by bob .*a key this gateway does not trust/);
    const again = await w.push(v1, w.sign(v1, "alice"));
    expect(again.outcome, again.reason ?? "").toBe("committed");
    await until("x3 took keyring v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    const afterRepush = await w.pushPlanSignedBy("shifted", "bob");
    expect(afterRepush.outcome, afterRepush.reason ?? "").toBe("committed");
  }, 120_000);

  it("refuses a keyring signed by a key it does not trust, one rolled back or with other content under its version, and one that would lock everyone out", async () => {
    const w = await world();
    const byMallory = w.keyring(1, ["mallory"], ["alice"]);
    await refusedEverywhere(
      w,
      await w.push(byMallory, w.sign(byMallory, "mallory")),
      /needs the signatures of 1 distinct key trusted here and has 0 \(mallory .*: not trusted here\)/,
    );
    // Two keys trusted from here on, and two signatures needed for the next change.
    const v2 = w.keyring(2, ["bob", "carol"], [], 2);
    expect((await w.push(v2, w.sign(v2, "alice"))).outcome).toBe("committed");
    await until("every gateway took keyring v2", 5000, () => w.versionsInForce().every((v) => v === 2));

    const older = w.keyring(1, ["mallory"]);
    await refusedEverywhere(
      w,
      await w.push(older, w.sign(older, "alice", "bob")),
      /keyring version 1 is older than the keyring version 2 in force here: a keyring is never rolled back/,
    );
    const otherV2 = w.keyring(2, ["bob", "carol", "mallory"], [], 2);
    await refusedEverywhere(
      w,
      await w.push(otherV2, w.sign(otherV2, "alice", "bob")),
      /another keyring is in force here under version 2 .*raise the version/,
    );
    const lockOut = w.keyring(3, ["bob"], ["alice", "carol"], 2);
    await refusedEverywhere(
      w,
      await w.push(lockOut, w.sign(lockOut, "bob", "carol")),
      /would leave 1 usable signing key here for a threshold of 2: nobody could change the keys again/,
    );
    const v3 = w.keyring(3, ["bob", "carol"], ["alice"], 2);
    // One signer is not two, nor is the same signer twice.
    await refusedEverywhere(
      w,
      await w.push(v3, w.sign(v3, "bob", "bob")),
      /needs the signatures of 2 distinct keys trusted here and has 1 \(bob .*: signed twice, counted once\)/,
    );
    const committed = await w.push(v3, w.sign(v3, "bob", "carol"));
    expect(committed.outcome, committed.reason ?? "").toBe("committed");
    await until("every gateway took keyring v3", 5000, () => w.versionsInForce().every((v) => v === 3));
    await refusedEverywhere(w, await w.pushPlanSignedBy("next", "alice"), /revoked here/);
  }, 120_000);

  it("a gateway's own credentials coordinating a keyring that trusts mallory get no from every other gateway", async () => {
    const w = await world();
    const client = await mqtt.connectAsync(w.broker.url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: "stolen-x1",
      username: "gw-x1",
      password: PASSWORD,
    });
    cleanups.push(() => client.endAsync(true));
    const store = CoordinatorStore.open(tempDir("greenwave-stolen-"));
    cleanups.push(() => store.close());
    const host = new CoordinatorHost(
      "x1",
      CORRIDOR,
      { ...DEFAULT_COORDINATOR_CONFIG, ...FAST },
      store,
      (topic, payload) => client.publish(topic, payload, { qos: 1 }),
    );
    client.on("message", (topic, payload) => {
      const parsed = parseCorridorMessage(topic, payload);
      if (parsed.ok) host.receive(parsed.envelope, true);
    });
    await client.subscribeAsync(inboxFilter(CORRIDOR, "x1"), { qos: 1 });
    const timer = setInterval(() => host.tick(), 50);
    cleanups.push(() => clearInterval(timer));
    const hostile = w.keyring(1, ["mallory"], ["alice"]);
    const coordinate = (signatures: WireSignature[]) =>
      coordinatePush(host, {
        name: "x1",
        timeReference: loadCorridor(w.fixture.corridor).timeReference,
        change: {
          kind: "keyring",
          version: 1,
          digest: hostile.keyring.digest,
          keyringFile: hostile.raw,
          participants: w.fixture.ids,
          signatures,
        },
        atWallMs: null,
        leadMs: 3000,
        ackTimeoutMs: 2000,
      });
    // Unsigned, then signed by mallory: x1 itself (its own participant) refuses as every other does.
    await refusedEverywhere(
      w,
      await coordinate([]),
      /needs the signatures of 1 distinct key trusted here and has 0/,
    );
    await refusedEverywhere(w, await coordinate(w.sign(hostile, "mallory")), /mallory .*: not trusted here/);
    // A real signature by alice, of another keyring (another digest), proves nothing about this one.
    const other = w.keyring(1, ["bob"]);
    await refusedEverywhere(
      w,
      await coordinate(w.sign(other, "alice")),
      /alice .*: does not verify for this keyring/,
    );
    expect(w.versionsInForce()).toEqual([null, null, null, null]);
  }, 90_000);
});
