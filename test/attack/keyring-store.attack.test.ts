import Database from "better-sqlite3";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startBroker } from "../../gateway/broker/broker.js";
import { type BrokerUser, hashPassword } from "../../gateway/broker/users.js";
import { loadCorridor, loadPlan } from "../../gateway/config/load.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import { KEYRING_KEY, keyringSubject } from "../../gateway/core/corridor/keyring.js";
import type { PreparedTxn } from "../../gateway/core/corridor/participant.js";
import type { WireSignature } from "../../gateway/core/corridor/plan-signature.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/node/corridor-participant.js";
import { type LoadedKeyring, loadKeyring } from "../../gateway/operator/keyring-file.js";
import { generateSigningKey, loadSigningKey, signSubject } from "../../gateway/operator/plan-signing.js";
import { pushKeyring, pushPlan, recoverLog } from "../../gateway/operator/plan-push.js";
import { compileKeyring } from "../../gateway/protocol/keyring.js";
import { PlanTrust } from "../../gateway/shell/corridor/plan-trust.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import { GatewayStore, STORE_FILE } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";

/**
 * The corridor's keyring (core/corridor/keyring.ts) against the failures an insider can arrange or wait
 * for: a keyring transaction in doubt when a gateway restarts (its coordinator halted after PREPARE, or
 * after logging its commit, then recovered), and a gateway store whose keyring row is damaged (garbled
 * so that its digest no longer matches, or truncated so that it is no longer JSON). Over the real
 * embedded broker with its users and ACL and four real gateways on their SQLite stores.
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

const NAMES = ["alice", "bob", "carol", "dave", "mallory"] as const;
type Name = (typeof NAMES)[number];

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
  const own = tempDir("greenwave-attack-store-signing-keys-");
  const trusted = tempDir("greenwave-attack-store-trusted-keys-");
  const keys = Object.fromEntries(NAMES.map((name) => [name, generateSigningKey(name, own)])) as Record<
    Name,
    ReturnType<typeof generateSigningKey>
  >;
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
  const coordinatorDir = tempDir("greenwave-attack-store-coordinator-");
  const keyringDir = tempDir("greenwave-attack-store-keyrings-");
  const pemOf = (file: string) => readFileSync(file, "utf8");

  /** A keyring file: these keys trusted (by name, PEM from their .pub), these revoked, this threshold. */
  const keyring = (
    version: number,
    trust: { name: string; publicKeyFile: string }[],
    revoke: { name: string; fingerprint: string }[] = [],
    threshold = 1,
  ): LoadedKeyring => {
    const file = join(keyringDir, `keyring-${randomBytes(4).toString("hex")}.yaml`);
    const indent = (text: string) =>
      text
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
        ...trust.map((k) => `  - name: ${k.name}\n    publicKey: |\n${indent(pemOf(k.publicKeyFile))}`),
        "revoked:",
        ...(revoke.length === 0 ? ["  []"] : []),
        ...revoke.map((k) => `  - { fingerprint: ${k.fingerprint}, name: ${k.name} }`),
        "",
      ].join("\n"),
    );
    return loadKeyring(file, CORRIDOR);
  };
  const signWith = (loaded: LoadedKeyring, signers: { privateKeyFile: string }[]): WireSignature[] =>
    signers.map((k) => {
      const file = signSubject(keyringSubject(loaded.keyring), loadSigningKey(k.privateKeyFile), Date.now());
      return { signer: file.signer, key: file.key, value: file.value };
    });
  const sign = (loaded: LoadedKeyring, ...signers: Name[]) =>
    signWith(
      loaded,
      signers.map((n) => keys[n]),
    );
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
  /** The operator's own push (alice, over her operator credentials); `haltAfter`: the coordinator dies there. */
  const push = (
    loaded: LoadedKeyring,
    signatures: WireSignature[],
    haltAfter?: "prepare-sent" | "commit-forced",
  ) =>
    withCoordinator((store) =>
      pushKeyring({
        ...common,
        corridor: loadCorridor(fixture.corridor),
        keyring: loaded,
        signatures,
        store,
        ...(haltAfter ? { haltAfter } : {}),
      }),
    );
  /** The operator's coordinator restarted: finishes its log and answers inquiries meanwhile. */
  const recover = () =>
    withCoordinator((store) =>
      recoverLog({
        url: broker.url,
        username: "alice",
        password: PASSWORD,
        name: "alice",
        corridor: loadCorridor(fixture.corridor),
        store,
        ackTimeoutMs: 8000,
        answerForMs: 8000,
        config: FAST,
      }),
    );
  const pushPlanSignedBy = (name: string, signer: { privateKeyFile: string }) => {
    const plan = loadPlan(join(fixture.plans, `${name}.yaml`));
    const subject = {
      corridor: CORRIDOR,
      kind: "plan" as const,
      id: plan.raw.id,
      version: plan.raw.version,
      digest: planDigest(plan.raw),
    };
    const file = signSubject(subject, loadSigningKey(signer.privateKeyFile), Date.now());
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
    fixture.ids.map(
      (id) => (corridor.stores.get(id)?.committedKeyring() as { version?: number } | null)?.version ?? null,
    );

  return { fixture, corridor, keys, keyring, sign, push, recover, pushPlanSignedBy, versionsInForce };
}

type World = Awaited<ReturnType<typeof world>>;

const phases = (w: World, txnId: string) =>
  w.fixture.ids.map((id) => w.corridor.stores.get(id)?.transaction(txnId)?.phase ?? null);

/** A push, again while the halted run's leases have not expired yet ("locked by @alice"). */
async function once<T extends { outcome: string; reason: string | null }>(
  push: () => Promise<T>,
): Promise<T> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const result = await push();
    if (!/could not take every lease/.test(result.reason ?? "") || performance.now() > deadline)
      return result;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function restart(w: World, id: string): Promise<void> {
  await w.corridor.restart(id);
  await until(`${id} online again`, 10_000, () => w.corridor.nodes.get(id)?.mqttConnected === true);
}

describe("a keyring transaction in doubt across a gateway's restart", () => {
  it("coordinator halted after PREPARE, x2 restarted in doubt, coordinator recovered: aborted everywhere, no keyring anywhere; the same keyring then commits", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    const halted = await w.push(v1, w.sign(v1, "alice"), "prepare-sent");
    expect(halted.outcome).toBe("halted");
    await until("every gateway prepared", 5000, () => phases(w, halted.txnId).every((p) => p === "prepared"));
    await restart(w, "x2");
    expect(w.corridor.stores.get("x2")?.transaction(halted.txnId)?.phase).toBe("prepared");
    await w.recover();
    await until("every gateway aborted", 20_000, () => phases(w, halted.txnId).every((p) => p === "aborted"));
    expect(w.versionsInForce()).toEqual([null, null, null, null]);
    // alice is still trusted everywhere (the aborted keyring revoked her): her plans are taken.
    const byAlice = await once(() => w.pushPlanSignedBy("next", w.keys.alice));
    expect(byAlice.outcome, byAlice.reason ?? "").toBe("committed");
    // The aborted keyring left nothing behind: pushed again, it commits everywhere.
    const again = await w.push(v1, w.sign(v1, "alice"));
    expect(again.outcome, again.reason ?? "").toBe("committed");
    await until("every gateway took v1", 5000, () => w.versionsInForce().every((v) => v === 1));
  }, 60_000);

  it("coordinator halted after forcing its commit, x3 restarted in doubt, coordinator recovered: committed everywhere, the keyring in every store", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    const halted = await w.push(v1, w.sign(v1, "alice"), "commit-forced");
    expect(halted.outcome).toBe("halted");
    await until("every gateway prepared", 5000, () => phases(w, halted.txnId).every((p) => p === "prepared"));
    expect(w.versionsInForce()).toEqual([null, null, null, null]);
    await restart(w, "x3");
    await w.recover();
    await until("every gateway committed", 20_000, () =>
      phases(w, halted.txnId).every((p) => p === "committed"),
    );
    await until("every store holds v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    for (const store of w.corridor.stores.values())
      expect(store.committedKeyring()).toMatchObject({ version: 1, digest: v1.keyring.digest });
    const byBob = await once(() => w.pushPlanSignedBy("next", w.keys.bob));
    expect(byBob.outcome, byBob.reason ?? "").toBe("committed");
    const byAlice = await w.pushPlanSignedBy("shifted", w.keys.alice);
    expect(byAlice.outcome).toBe("aborted");
    expect(byAlice.reason).toMatch(/revoked here/);
  }, 60_000);
});

describe("a damaged keyring in a gateway's store", () => {
  it("garbled (digest no longer matches), x2 restarted: x2 stays up, trusts nothing and says so", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    expect((await w.push(v1, w.sign(v1, "alice"))).outcome).toBe("committed");
    await until("every gateway took v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    await w.corridor.kill("x2");
    const db = new Database(join(w.corridor.dataDir, "x2", STORE_FILE));
    const body = JSON.parse((db.prepare("SELECT body FROM keyring").get() as { body: string }).body);
    // mallory's key in bob's place, under bob's name and the old digest.
    body.keys[0].publicKey = readFileSync(w.keys.mallory.publicKeyFile, "utf8");
    db.prepare("UPDATE keyring SET body = ?").run(JSON.stringify(body));
    db.close();
    await restart(w, "x2");
    for (const signer of [w.keys.bob, w.keys.alice, w.keys.mallory]) {
      const result = await w.pushPlanSignedBy("next", signer);
      expect(result.outcome).toBe("aborted");
      // The coordinator aborts at the first no: x2's own is in its audit trail.
      const x2Reason = await until(
        "x2's no in its audit trail",
        5000,
        () =>
          w.corridor.stores
            .get("x2")
            ?.events(0, 10_000)
            .find((e) => e.type === "txn-vote-no" && e.detail.txnId === result.txnId)?.detail.reason,
      );
      expect(String(x2Reason)).toMatch(
        /the stored keyring's digest does not match its content: push the keyring again/,
      );
    }
    expect(w.corridor.nodes.get("x2")?.mqttConnected).toBe(true);
  }, 60_000);

  // Found by the attack review and mended in the same stop.
  it("garbled, then pushed again as the gateway says: x2 takes it and trusts bob again", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    expect((await w.push(v1, w.sign(v1, "alice"))).outcome).toBe("committed");
    await until("every gateway took v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    await w.corridor.kill("x2");
    const db = new Database(join(w.corridor.dataDir, "x2", STORE_FILE));
    const body = JSON.parse((db.prepare("SELECT body FROM keyring").get() as { body: string }).body);
    body.keys[0].name = "mallory";
    db.prepare("UPDATE keyring SET body = ?").run(JSON.stringify(body));
    db.close();
    await restart(w, "x2");
    const again = await w.push(v1, w.sign(v1, "alice"));
    expect(again.outcome, again.reason ?? "").toBe("committed");
    const byBob = await w.pushPlanSignedBy("next", w.keys.bob);
    expect(byBob.outcome, byBob.reason ?? "").toBe("committed");
  }, 60_000);
});

describe("a truncated keyring row (no longer JSON), read as the gateway reads it", () => {
  const pem = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }) as string;
  const compiled = compileKeyring(
    { kind: "keyring", corridor: "test-corridor", version: 1, keys: [{ name: "bob", publicKey: pem }] },
    "test-corridor",
  );
  const txn: PreparedTxn = {
    txnId: "k1",
    coordinator: "@alice",
    token: 1,
    participants: ["x1"],
    plan: { planId: KEYRING_KEY, version: 1 },
    activationWallMs: 50_000,
  };
  const damaged = (mangle: string) => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-attack-store-truncated-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = GatewayStore.open(dir);
    cleanups.push(() => store.close());
    if (!compiled.ok) throw new Error("fixture keyring invalid");
    store.persistPrepared(txn, { body: compiled.value }, 1, 1_000);
    store.persistOutcome("k1", "committed", 1_100);
    const db = new Database(join(dir, STORE_FILE));
    db.prepare(`UPDATE keyring SET body = ${mangle}`).run();
    db.close();
    const trust = new PlanTrust(null, "test-corridor");
    trust.useKeyring(() => store.committedKeyring());
    return trust;
  };

  it("a body garbled to other JSON (an empty object, an array, a number) trusts nothing", () => {
    for (const mangle of ["'{}'", "'[]'", "'7'", "'\"keyring\"'"])
      expect(damaged(mangle).state(), mangle).toMatchObject({
        kind: "unreadable",
        dir: "the store's keyring",
      });
  });

  // Found by the attack review and mended in the same stop.
  it("a body truncated mid-JSON trusts nothing and says so, rather than throwing", () => {
    const trust = damaged("substr(body, 1, 40)");
    expect(trust.state()).toMatchObject({ kind: "unreadable", dir: "the store's keyring" });
  });

  // Found by the attack review and mended in the same stop.
  it("a body garbled to JSON null trusts nothing (it is not 'no keyring committed')", () => {
    expect(damaged("'null'").state()).toMatchObject({ kind: "unreadable" });
  });
});
