import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { WireSignature } from "../../gateway/core/corridor/plan-signature.js";
import { coordinatePush } from "../../gateway/shell/corridor/coordinator-host.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { keyringRig } from "../support/keyring-rig.js";
import { Cleanups } from "../support/push-rig.js";

/**
 * Trusted keys rotated by a committed corridor change (issue 20, item 3; core/corridor/keyring.ts), over
 * the real embedded broker (users and ACL) and four real gateways on their SQLite stores, each starting
 * with alice's public key in its keys directory: a keyring signed by alice that trusts bob and revokes
 * alice commits everywhere, after which bob's plans are taken and alice's refused, also across a restart
 * and on a gateway whose store was lost (the same keyring pushed again); keyrings signed by a key nobody
 * trusts, rolled back, under a threshold, or locking everyone out are refused by every gateway, and so
 * is one a stolen gateway credential coordinates.
 */
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const world = () => keyringRig(cleanups);

describe("the corridor's keyring: trusted keys rotated by a committed change", () => {
  it("alice rotates to bob: committed everywhere, then bob's plans are taken and alice's refused, also after a restart and on a gateway that lost its store", async () => {
    const w = await world();
    const v1 = w.keyring(1, ["bob"], ["alice"]);
    const rotated = await w.pushKeyring(v1, w.sign(v1, "alice"));
    expect(rotated.outcome, rotated.reason ?? "").toBe("committed");
    expect(rotated.plan).toMatchObject({ kind: "keyring", version: 1, digest: v1.keyring.digest });
    await until("every gateway took keyring v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    for (const store of w.corridor.stores.values())
      expect(store.events(0, 10_000).some((e) => e.type === "keyring-adopted")).toBe(true);

    const byAlice = await w.pushPlanSignedBy("next", "alice");
    await w.refusedEverywhere(byAlice, /signed by alice .*which is revoked here/);
    const byBob = await w.pushPlanSignedBy("next", "bob");
    expect(byBob.outcome, byBob.reason ?? "").toBe("committed");

    // A restart keeps the keyring (the store's, not the directory's, which still trusts alice only).
    await w.corridor.restart("x2");
    await until("x2 online again", 10_000, () => w.corridor.nodes.get("x2")?.mqttConnected === true);
    const afterRestart = await w.pushPlanSignedBy("shifted", "alice");
    await w.refusedEverywhere(afterRestart, /revoked here/);

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
    const again = await w.pushKeyring(v1, w.sign(v1, "alice"));
    expect(again.outcome, again.reason ?? "").toBe("committed");
    await until("x3 took keyring v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    const afterRepush = await w.pushPlanSignedBy("shifted", "bob");
    expect(afterRepush.outcome, afterRepush.reason ?? "").toBe("committed");
  }, 120_000);

  it("refuses a keyring signed by a key it does not trust, one rolled back or with other content under its version, and one that would lock everyone out", async () => {
    const w = await world();
    const byMallory = w.keyring(1, ["mallory"], ["alice"]);
    await w.refusedEverywhere(
      await w.pushKeyring(byMallory, w.sign(byMallory, "mallory")),
      /needs the signatures of 1 distinct key trusted here and has 0 \(mallory .*: not trusted here\)/,
    );
    // Two keys trusted from here on, and two signatures needed for the next change.
    const v2 = w.keyring(2, ["bob", "carol"], [], 2);
    expect((await w.pushKeyring(v2, w.sign(v2, "alice"))).outcome).toBe("committed");
    await until("every gateway took keyring v2", 5000, () => w.versionsInForce().every((v) => v === 2));

    const older = w.keyring(1, ["mallory"]);
    await w.refusedEverywhere(
      await w.pushKeyring(older, w.sign(older, "alice", "bob")),
      /keyring version 1 is older than the keyring version 2 in force here: a keyring is never rolled back/,
    );
    const otherV2 = w.keyring(2, ["bob", "carol", "mallory"], [], 2);
    await w.refusedEverywhere(
      await w.pushKeyring(otherV2, w.sign(otherV2, "alice", "bob")),
      /another keyring is in force here under version 2 .*raise the version/,
    );
    const lockOut = w.keyring(3, ["bob"], ["alice", "carol"], 2);
    await w.refusedEverywhere(
      await w.pushKeyring(lockOut, w.sign(lockOut, "bob", "carol")),
      /would leave 1 usable signing key here for a threshold of 2: nobody could change the keys again/,
    );
    const v3 = w.keyring(3, ["bob", "carol"], ["alice"], 2);
    // One signer is not two, nor is the same signer twice.
    await w.refusedEverywhere(
      await w.pushKeyring(v3, w.sign(v3, "bob", "bob")),
      /needs the signatures of 2 distinct keys trusted here and has 1 \(bob .*: signed twice, counted once\)/,
    );
    const committed = await w.pushKeyring(v3, w.sign(v3, "bob", "carol"));
    expect(committed.outcome, committed.reason ?? "").toBe("committed");
    await until("every gateway took keyring v3", 5000, () => w.versionsInForce().every((v) => v === 3));
    await w.refusedEverywhere(await w.pushPlanSignedBy("next", "alice"), /revoked here/);
  }, 120_000);

  it("a gateway's own credentials coordinating a keyring that trusts mallory get no from every other gateway", async () => {
    const w = await world();
    const host = await w.stolenCoordinator("x1");
    const hostile = w.keyring(1, ["mallory"], ["alice"]);
    const coordinate = (signatures: WireSignature[]) =>
      coordinatePush(host, {
        name: "x1",
        timeReference: w.loaded.timeReference,
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
    await w.refusedEverywhere(
      await coordinate([]),
      /needs the signatures of 1 distinct key trusted here and has 0/,
    );
    await w.refusedEverywhere(await coordinate(w.sign(hostile, "mallory")), /mallory .*: not trusted here/);
    // A real signature by alice, of another keyring (another digest), proves nothing about this one.
    const other = w.keyring(1, ["bob"]);
    await w.refusedEverywhere(
      await coordinate(w.sign(other, "alice")),
      /alice .*: does not verify for this keyring/,
    );
    expect(w.versionsInForce()).toEqual([null, null, null, null]);
  }, 90_000);
});
