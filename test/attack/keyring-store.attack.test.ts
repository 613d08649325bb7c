import Database from "better-sqlite3";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_COORDINATOR_CONFIG } from "../../gateway/core/corridor/coordinator.js";
import { PlanTrust } from "../../gateway/shell/corridor/plan-trust.js";
import { GatewayStore, STORE_FILE } from "../../gateway/store/store.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { commitKeyring, mangleStoredKeyring } from "../support/keyring-files.js";
import { keyringRig } from "../support/keyring-rig.js";
import { Cleanups } from "../support/push-rig.js";

/**
 * The corridor's keyring (core/corridor/keyring.ts) against the failures an insider can arrange or wait
 * for: a keyring transaction in doubt when a gateway restarts (its coordinator halted after PREPARE, or
 * after logging its commit, then recovered), and a gateway store whose keyring row is damaged (garbled
 * so that its digest no longer matches, or truncated so that it is no longer JSON). Over the real
 * embedded broker with its users and ACL and four real gateways on their SQLite stores.
 */
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function world() {
  const w = await keyringRig(cleanups);
  // The coordinator restarted waits longer for acknowledgements than the rig's default.
  return { ...w, recover: () => w.recover(8000) };
}

type World = Awaited<ReturnType<typeof world>>;

const phases = (w: World, txnId: string) =>
  w.fixture.ids.map((id) => w.corridor.stores.get(id)?.transaction(txnId)?.phase ?? null);

/**
 * A push, again while leases are still held ("locked by @alice"): the halted run's, and — on a loaded
 * machine — one granted to an earlier attempt after that attempt's command had given up and closed
 * (nobody is left to release it). Each retry waits out a lease's TTL, so that it never meets the lease
 * its predecessor left; at most three attempts.
 */
async function once<T extends { outcome: string; reason: string | null }>(
  push: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const result = await push();
    if (!/could not take every lease/.test(result.reason ?? "") || attempt === 3) return result;
    await new Promise((resolve) => setTimeout(resolve, DEFAULT_COORDINATOR_CONFIG.leaseTtlMs + 500));
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
    const halted = await w.pushKeyring(v1, w.sign(v1, "alice"), "prepare-sent");
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
    const again = await w.pushKeyring(v1, w.sign(v1, "alice"));
    expect(again.outcome, again.reason ?? "").toBe("committed");
    await until("every gateway took v1", 5000, () => w.versionsInForce().every((v) => v === 1));
  }, 90_000);

  it("coordinator halted after forcing its commit, x3 restarted in doubt, coordinator recovered: committed everywhere, the keyring in every store", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    const halted = await w.pushKeyring(v1, w.sign(v1, "alice"), "commit-forced");
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
  }, 90_000);
});

/** x2 stopped, its stored keyring's body edited (its digest left as it was), and x2 started again. */
async function garbledAtX2(
  w: World,
  edit: (body: { keys: [{ name: string; publicKey: string }] }) => void,
): Promise<void> {
  await w.corridor.kill("x2");
  const db = new Database(join(w.corridor.dataDir, "x2", STORE_FILE));
  try {
    const body = JSON.parse((db.prepare("SELECT body FROM keyring").get() as { body: string }).body);
    edit(body);
    db.prepare("UPDATE keyring SET body = ?").run(JSON.stringify(body));
  } finally {
    db.close();
  }
  await restart(w, "x2");
}

describe("a damaged keyring in a gateway's store", () => {
  it("garbled (digest no longer matches), x2 restarted: x2 stays up, trusts nothing and says so", async () => {
    const w = await world();
    const v1 = w.keyring(1, [w.keys.bob], [w.keys.alice]);
    expect((await w.pushKeyring(v1, w.sign(v1, "alice"))).outcome).toBe("committed");
    await until("every gateway took v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    // mallory's key in bob's place, under bob's name and the old digest.
    await garbledAtX2(w, (body) => {
      body.keys[0].publicKey = readFileSync(w.keys.mallory.publicKeyFile, "utf8");
    });
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
    expect((await w.pushKeyring(v1, w.sign(v1, "alice"))).outcome).toBe("committed");
    await until("every gateway took v1", 5000, () => w.versionsInForce().every((v) => v === 1));
    await garbledAtX2(w, (body) => {
      body.keys[0].name = "mallory";
    });
    const again = await w.pushKeyring(v1, w.sign(v1, "alice"));
    expect(again.outcome, again.reason ?? "").toBe("committed");
    const byBob = await w.pushPlanSignedBy("next", w.keys.bob);
    expect(byBob.outcome, byBob.reason ?? "").toBe("committed");
  }, 60_000);
});

describe("a truncated keyring row (no longer JSON), read as the gateway reads it", () => {
  const damaged = (mangle: string) => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-attack-store-truncated-"));
    cleanups.defer(() => rmSync(dir, { recursive: true, force: true }));
    const store = GatewayStore.open(dir);
    cleanups.defer(() => store.close());
    commitKeyring(store, "test-corridor");
    mangleStoredKeyring(join(dir, STORE_FILE), mangle);
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
