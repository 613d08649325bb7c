import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadKeyring } from "../../gateway/operator/keyring-file.js";
import { DEFAULT_COORDINATOR_CONFIG } from "../../gateway/core/corridor/coordinator.js";
import type { WireSignature } from "../../gateway/core/corridor/plan-signature.js";
import { generateSigningKey } from "../../gateway/operator/plan-signing.js";
import { inboxFilter, parseCorridorMessage } from "../../gateway/protocol/corridor-messages.js";
import { CoordinatorHost, coordinatePush } from "../../gateway/shell/corridor/coordinator-host.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { keyringRig } from "../support/keyring-rig.js";
import { Cleanups, FAST, TEST_CORRIDOR } from "../support/push-rig.js";

/**
 * The corridor's keyring (core/corridor/keyring.ts) attacked by a hostile insider holding a gateway's
 * broker credentials (gw-x1), over the real embedded broker with its users and ACL and four real
 * gateways on their SQLite stores, each trusting alice's public key by hand: hostile keyring PREPAREs
 * sent straight to x2's inbox (prototype keys, junk and private PEM, another corridor, a PREPARE whose
 * claim disagrees with what it carries, a signature stuffed 16 times, more signatures than the wire
 * takes, the largest threshold), and a committed keyring's PREPARE captured in x1's own inbox and
 * replayed once a newer keyring is in force.
 */
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const CORRIDOR = TEST_CORRIDOR;

async function world() {
  const w = await keyringRig(cleanups);
  /** The insider: gw-x1's credentials, a coordinator of its own, and every PREPARE x1's inbox receives. */
  const client = await w.login("gw-x1");
  const stolenStore = CoordinatorStore.open(cleanups.tempDir("greenwave-attack-stolen-"));
  cleanups.defer(() => stolenStore.close());
  const host = new CoordinatorHost(
    "x1",
    CORRIDOR,
    { ...DEFAULT_COORDINATOR_CONFIG, ...FAST },
    stolenStore,
    (topic, payload) => client.publish(topic, payload, { qos: 1 }),
  );
  const captured: { body: Record<string, unknown> }[] = [];
  client.on("message", (topic, payload) => {
    const parsed = parseCorridorMessage(topic, payload);
    if (!parsed.ok) return;
    if (parsed.envelope.body.type === "prepare" && parsed.envelope.from !== "x1")
      captured.push({ body: parsed.envelope.body as unknown as Record<string, unknown> });
    host.receive(parsed.envelope, true);
  });
  await client.subscribeAsync(inboxFilter(CORRIDOR, "x1"), { qos: 1 });
  const timer = setInterval(() => host.tick(), 50);
  cleanups.defer(() => clearInterval(timer));
  /** A keyring PREPARE of the insider's making, sent to `participants` (x2 alone unless told). */
  const hostile = (change: {
    version: number;
    digest: string;
    keyringFile: unknown;
    signatures: WireSignature[];
    participants?: string[];
  }) =>
    coordinatePush(host, {
      name: "x1",
      timeReference: w.loaded.timeReference,
      change: { kind: "keyring", participants: ["x2"], ...change },
      atWallMs: null,
      leadMs: 3000,
      ackTimeoutMs: 2000,
    });
  return { ...w, hostile, captured };
}

type World = Awaited<ReturnType<typeof world>>;

/** x2's vote on a hostile PREPARE: no, for this reason; nothing changed in any store. */
function x2VotedNo(
  w: World,
  result: Awaited<ReturnType<World["hostile"]>>,
  reason: RegExp,
  versionsBefore: (number | null)[],
): void {
  expect(result.outcome).toBe("aborted");
  const vote = result.votes.find((v) => v.intersection === "x2");
  expect(vote?.vote, JSON.stringify(result.votes)).toBe("no");
  expect(vote?.reason ?? "").toMatch(reason);
  expect(w.versionsInForce()).toEqual(versionsBefore);
}

describe("hostile keyring PREPAREs from a gateway's credentials, straight to another gateway's inbox", () => {
  it("prototype keys, junk and private PEM, another corridor, and a PREPARE that disagrees with what it carries: each a no naming why, nothing taken", async () => {
    const w = await world();
    const before = w.versionsInForce();
    expect(before).toEqual([null, null, null, null]);
    const good = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    const goodSigs = w.sign(good, "alice");

    // __proto__ and constructor as keys of the keyring file, with alice's genuine signature of `good`.
    const proto = JSON.parse(
      JSON.stringify(good.raw).replace(/^\{/, '{"__proto__":{"threshold":0,"keys":[]},'),
    ) as unknown;
    expect(Object.keys(proto as object)).toContain("__proto__");
    x2VotedNo(
      w,
      await w.hostile({ version: 1, digest: good.keyring.digest, keyringFile: proto, signatures: goodSigs }),
      /the keyring is not valid: .*"__proto__" is not allowed as a key/,
      before,
    );
    const nestedProto = JSON.parse(
      JSON.stringify(good.raw).replace('"keys":[{', '"keys":[{"__proto__":{"publicKey":"x"},'),
    ) as unknown;
    x2VotedNo(
      w,
      await w.hostile({
        version: 1,
        digest: good.keyring.digest,
        keyringFile: nestedProto,
        signatures: goodSigs,
      }),
      /the keyring is not valid: keys\[0\]\.__proto__: "__proto__" is not allowed/,
      before,
    );
    x2VotedNo(
      w,
      await w.hostile({
        version: 1,
        digest: good.keyring.digest,
        keyringFile: { ...good.raw, constructor: { name: "Object" } },
        signatures: goodSigs,
      }),
      /the keyring is not valid: .*constructor/i,
      before,
    );

    // 64 keys of 1000 characters of junk PEM (the most the schema takes, ~66 KB on the wire).
    const junk = {
      ...good.raw,
      keys: Array.from({ length: 64 }, (_, i) => ({
        name: `junk-${i}`,
        publicKey: `-----BEGIN PUBLIC KEY-----\n${"QUFB".repeat(240)}\n-----END PUBLIC KEY-----`.slice(
          0,
          1000,
        ),
      })),
    };
    expect(JSON.stringify(junk).length).toBeGreaterThan(64_000);
    x2VotedNo(
      w,
      await w.hostile({ version: 1, digest: good.keyring.digest, keyringFile: junk, signatures: goodSigs }),
      /the keyring is not valid: keys\[0\]\.publicKey: junk-0: not a PEM public key/,
      before,
    );
    // 65 keys: one past the limit.
    x2VotedNo(
      w,
      await w.hostile({
        version: 1,
        digest: good.keyring.digest,
        keyringFile: { ...junk, keys: [...junk.keys, junk.keys[0]] },
        signatures: goodSigs,
      }),
      /the keyring is not valid: keys/,
      before,
    );

    // A private key where a public key goes (bob's secret, PKCS#8 PEM): refused, and never echoed back.
    const privatePem = readFileSync(w.keys.bob.privateKeyFile, "utf8");
    const withPrivate = { ...good.raw, keys: [{ name: "bob", publicKey: privatePem }] };
    const privateResult = await w.hostile({
      version: 1,
      digest: good.keyring.digest,
      keyringFile: withPrivate,
      signatures: goodSigs,
    });
    x2VotedNo(w, privateResult, /keys\[0\]\.publicKey: bob: a PRIVATE key: only public keys/, before);
    const secretLine = privatePem.split("\n")[1] ?? "";
    expect(secretLine.length).toBeGreaterThan(20);
    expect(JSON.stringify(privateResult)).not.toContain(secretLine);

    // A keyring of another corridor, genuinely signed by alice for that corridor.
    const otherCorridor = { ...good.raw, corridor: "other-corridor" };
    const elsewhere = loadKeyring(
      (() => {
        const file = join(w.fixture.dir, "elsewhere.yaml");
        writeFileSync(file, JSON.stringify(otherCorridor));
        return file;
      })(),
    );
    x2VotedNo(
      w,
      await w.hostile({
        version: 1,
        digest: elsewhere.keyring.digest,
        keyringFile: otherCorridor,
        signatures: w.sign(elsewhere, "alice"),
      }),
      /the keyring is for corridor other-corridor, not test-corridor/,
      before,
    );

    // The PREPARE's claim (what the decision signature and the store's record cover) is not what it carries.
    x2VotedNo(
      w,
      await w.hostile({ version: 1, digest: "0".repeat(64), keyringFile: good.raw, signatures: goodSigs }),
      /the PREPARE names keyring version 1 \(digest 000000000000…\) but carries version 1 \(digest /,
      before,
    );
    x2VotedNo(
      w,
      await w.hostile({
        version: 7,
        digest: good.keyring.digest,
        keyringFile: good.raw,
        signatures: goodSigs,
      }),
      /the PREPARE names keyring version 7 .* but carries version 1/,
      before,
    );
    // The honest PREPARE, from the same stolen credentials, to x2 alone: the signatures are what count.
    const honest = await w.hostile({
      version: 1,
      digest: good.keyring.digest,
      keyringFile: good.raw,
      signatures: goodSigs,
    });
    expect(honest.outcome, honest.reason ?? "").toBe("committed");
    await until("x2 took v1", 5000, () => w.versionsInForce()[1] === 1);
    expect(w.versionsInForce()).toEqual([null, 1, null, null]);
  }, 60_000);

  it("one key's signature 16 times counts once; 17 signatures never reach a vote; threshold 16 of 16 keys holds both ways; a key may sign its own revocation", async () => {
    const w = await world();
    // Two distinct signatures needed from here on: bob and carol trusted.
    const v2 = w.keyring(2, [w.keys.bob, w.keys.carol], [], 2);
    const committed = await w.pushKeyring(v2, w.sign(v2, "alice"));
    expect(committed.outcome, committed.reason ?? "").toBe("committed");
    await until("every gateway took v2", 5000, () => w.versionsInForce().every((v) => v === 2));
    const before = w.versionsInForce();

    const v3 = w.keyring(3, [w.keys.bob, w.keys.carol, w.keys.mallory], [], 2);
    const bob16 = Array.from({ length: 16 }, () => w.sign(v3, "bob")[0] as WireSignature);
    x2VotedNo(
      w,
      await w.hostile({ version: 3, digest: v3.keyring.digest, keyringFile: v3.raw, signatures: bob16 }),
      /keyring version 3 needs the signatures of 2 distinct keys trusted here and has 1 \(bob .*: signed twice, counted once/,
      before,
    );
    // The same signature with another signer name is the same key: still one.
    const bobAsCarol = { ...(w.sign(v3, "bob")[0] as WireSignature), signer: "carol" };
    x2VotedNo(
      w,
      await w.hostile({
        version: 3,
        digest: v3.keyring.digest,
        keyringFile: v3.raw,
        signatures: [...w.sign(v3, "bob"), bobAsCarol],
      }),
      /has 1 \(carol .*: signed twice, counted once\)/,
      before,
    );
    // Carol's key fingerprint with bob's signature value: does not verify.
    const forged = {
      ...(w.sign(v3, "bob")[0] as WireSignature),
      signer: "carol",
      key: w.keys.carol.fingerprint,
    };
    x2VotedNo(
      w,
      await w.hostile({
        version: 3,
        digest: v3.keyring.digest,
        keyringFile: v3.raw,
        signatures: [...w.sign(v3, "bob"), forged],
      }),
      /has 1 \(carol .*: does not verify for this keyring\)/,
      before,
    );

    // 17 signatures: more than the wire takes. x2 drops the PREPARE unread (no vote at all); nothing changes.
    const v3sigs17 = [
      ...w.sign(v3, "bob", "carol"),
      ...Array.from({ length: 15 }, () => w.sign(v3, "bob")[0] as WireSignature),
    ];
    expect(v3sigs17).toHaveLength(17);
    const tooMany = await w.hostile({
      version: 3,
      digest: v3.keyring.digest,
      keyringFile: v3.raw,
      signatures: v3sigs17,
    });
    expect(tooMany.outcome).toBe("aborted");
    expect(tooMany.votes.find((v) => v.intersection === "x2")?.vote).toBe("none");
    expect(w.versionsInForce()).toEqual(before);

    // A key signing its own revocation counts: trust is counted against the keys trusted BEFORE the
    // change (carol is trusted now), which is what rotating a key out needs. bob and carol sign a
    // keyring that revokes carol and trusts dave: taken, and carol's plans are refused from then on.
    const v4 = w.keyring(4, [w.keys.bob, w.keys.dave], [w.keys.carol], 2);
    const selfRevoked = await w.pushKeyring(v4, w.sign(v4, "bob", "carol"));
    expect(selfRevoked.outcome, selfRevoked.reason ?? "").toBe("committed");
    await until("every gateway took v4", 5000, () => w.versionsInForce().every((v) => v === 4));
    const byCarol = await w.pushPlanSignedBy("next", w.keys.carol);
    expect(byCarol.outcome).toBe("aborted");
    expect(byCarol.reason).toMatch(/signed by carol .*which is revoked here/);
    // …but a revoked key alone cannot bring its key back (its signature no longer counts).
    const back = w.keyring(5, [w.keys.bob, w.keys.carol, w.keys.dave], [], 2);
    const unrevoke = await w.pushKeyring(back, w.sign(back, "carol", "bob"));
    expect(unrevoke.outcome).toBe("aborted");
    expect(unrevoke.reason).toMatch(/has 1 \(carol .*: revoked here\)/);

    // The largest threshold: 16 keys, 16 signatures needed next. Taken (17 usable keys with the directory's).
    const sixteen = Array.from({ length: 16 }, (_, i) => generateSigningKey(`k${i}`, w.own));
    const v6 = w.keyring(6, sixteen, [], 16);
    const big = await w.pushKeyring(v6, w.sign(v6, "bob", "dave"));
    expect(big.outcome, big.reason ?? "").toBe("committed");
    await until("every gateway took v6", 5000, () => w.versionsInForce().every((v) => v === 6));
    const v7 = w.keyring(7, sixteen, [w.keys.bob, w.keys.dave], 16);
    const fifteen = await w.pushKeyring(v7, w.sign(v7, ...sixteen.slice(0, 15)));
    expect(fifteen.outcome).toBe("aborted");
    expect(fifteen.reason).toMatch(/needs the signatures of 16 distinct keys trusted here and has 15/);
    const all16 = await w.pushKeyring(v7, w.sign(v7, ...sixteen));
    expect(all16.outcome, all16.reason ?? "").toBe("committed");
    await until("every gateway took v7", 5000, () => w.versionsInForce().every((v) => v === 7));
  }, 60_000);

  // Found by the attack review and mended in the same stop.
  it("16 untrusted signatures with long signer names: x2's no comes back with its reason", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.mallory], [w.keys.alice]);
    const signatures = Array.from({ length: 16 }, (_, i) => ({
      signer: `m${"a".repeat(59)}${String(i).padStart(4, "0")}`,
      key: randomBytes(32).toString("hex"),
      value: randomBytes(64).toString("base64"),
    }));
    const result = await w.hostile({
      version: 1,
      digest: v1.keyring.digest,
      keyringFile: v1.raw,
      signatures,
    });
    expect(result.outcome).toBe("aborted");
    const vote = result.votes.find((v) => v.intersection === "x2");
    expect(vote?.vote, JSON.stringify(result.votes)).toBe("no");
  }, 60_000);
});

describe("a committed keyring's PREPARE replayed by the insider", () => {
  it("captured in x1's own inbox, re-sent as a new transaction once a newer keyring is in force: refused as older, everywhere", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    const first = await w.pushKeyring(v1, w.sign(v1, "alice"));
    expect(first.outcome, first.reason ?? "").toBe("committed");
    await until("every gateway took v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    const prepare = w.captured.find(
      (c) => (c.body.plan as { kind?: string }).kind === "keyring" && c.body.txnId === first.txnId,
    )?.body;
    expect(prepare, "x1's inbox saw the PREPARE of v1").toBeDefined();
    const replay = () =>
      w.hostile({
        version: (prepare?.plan as { version: number }).version,
        digest: (prepare?.plan as { digest: string }).digest,
        keyringFile: prepare?.planFile,
        signatures: prepare?.signatures as WireSignature[],
        participants: ["x2", "x3", "x4"],
      });
    // While v1 is in force, the replay changes nothing (it is the keyring in force, taken again).
    const same = await replay();
    expect(same.outcome, same.reason ?? "").toBe("committed");
    expect(w.versionsInForce()).toEqual([1, 1, 1, 1]);

    const v2 = w.keyring(2, [w.keys.carol], [w.keys.alice, w.keys.bob]);
    const second = await w.pushKeyring(v2, w.sign(v2, "bob"));
    expect(second.outcome, second.reason ?? "").toBe("committed");
    await until("every gateway took v2", 5000, () => w.versionsInForce().every((v) => v === 2));

    const replayed = await replay();
    expect(replayed.outcome, JSON.stringify(replayed)).toBe("aborted");
    // The coordinator aborts at the first no; every participant's own no is in its audit trail.
    const refusals = () =>
      ["x2", "x3", "x4"].map(
        (id) =>
          w.corridor.stores
            .get(id)
            ?.events(0, 10_000)
            .find((e) => e.type === "txn-vote-no" && e.detail.txnId === replayed.txnId)?.detail.reason,
      );
    await until("every replayed-to gateway's no in its audit trail", 5000, () =>
      refusals().every((r) => r !== undefined),
    );
    for (const reason of refusals())
      expect(String(reason)).toMatch(
        /keyring version 1 is older than the keyring version 2 in force here: a keyring is never rolled back/,
      );
    expect(w.versionsInForce()).toEqual([2, 2, 2, 2]);
    // bob (revoked by v2) is still refused: the replay brought nothing back.
    const byBob = await w.pushPlanSignedBy("next", w.keys.bob);
    expect(byBob.outcome).toBe("aborted");
    expect(byBob.reason).toMatch(/signed by bob .*which is revoked here/);
  }, 60_000);
});
