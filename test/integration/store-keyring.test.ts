import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { KEYRING_KEY } from "../../gateway/core/corridor/keyring.js";
import type { PreparedTxn } from "../../gateway/core/corridor/participant.js";
import { compileKeyring } from "../../gateway/protocol/keyring.js";
import { PlanTrust } from "../../gateway/shell/corridor/plan-trust.js";
import { StoreReader } from "../../gateway/store/store-reader.js";
import { DEFAULT_STORE_LIMITS, GatewayStore, STORE_FILE } from "../../gateway/store/store.js";

/**
 * The corridor's keyring in a gateway's SQLite store (core/corridor/keyring.ts; migration 11): taken in
 * the same forced write as its transaction's commit, never replaced by an older version, kept when the
 * transactions are pruned, never handed to the controller as a change, readable at the cabinet, and a
 * damaged one trusts nothing.
 */
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-store-keyring-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const bobPem = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }) as string;

function keyring(version: number) {
  const compiled = compileKeyring(
    {
      kind: "keyring",
      corridor: "main-street",
      version,
      keys: [{ name: `bob-${version}`, publicKey: bobPem }],
    },
    "main-street",
  );
  if (!compiled.ok) throw new Error("bad keyring");
  return compiled.value;
}

const txn = (txnId: string, version: number, token: number): PreparedTxn => ({
  txnId,
  coordinator: "@alice",
  token,
  participants: ["elm"],
  plan: { planId: KEYRING_KEY, version },
  activationWallMs: 50_000,
});

describe("the store's keyring", () => {
  it("is the keyring of the newest committed version, from its commit on, across a restart and the pruning of transactions", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir, { ...DEFAULT_STORE_LIMITS, maxFinishedTxns: 5 });
    store.persistPrepared(txn("k2", 2, 1), { body: keyring(2) }, 1, 1_000);
    expect(store.committedKeyring()).toBeNull(); // prepared is not committed
    store.persistOutcome("k2", "committed", 1_100);
    expect(store.committedKeyring()).toMatchObject({ version: 2, digest: keyring(2).digest });
    // An older version committed later (it cannot be, by the participants' vote; the store holds too).
    store.persistPrepared(txn("k1", 1, 2), { body: keyring(1) }, 2, 2_000);
    store.persistOutcome("k1", "committed", 2_100);
    expect(store.committedKeyring()).toMatchObject({ version: 2 });
    // An aborted newer one changes nothing.
    store.persistPrepared(txn("k3", 3, 3), { body: keyring(3) }, 3, 3_000);
    store.persistOutcome("k3", "aborted", 3_100);
    expect(store.committedKeyring()).toMatchObject({ version: 2 });
    // Never a change for the controller, and kept when its transaction is pruned.
    expect(store.committedTransactions(64).map((s) => s.txn.txnId)).toEqual([]);
    for (let i = 0; i < 300; i++) store.persistOutcome(`refused-${i}`, "aborted", 4_000 + i);
    for (let i = 0; i < 200; i++) {
      store.persistPrepared(
        { ...txn(`p${i}`, 1, 10 + i), plan: { planId: "base", version: 1 } },
        { body: null },
        10 + i,
        5_000 + i,
      );
      store.persistOutcome(`p${i}`, "aborted", 5_000 + i);
    }
    expect(store.transaction("k2")).toBeNull();
    store.close();
    const reopened = GatewayStore.open(dir);
    expect(reopened.committedKeyring()).toMatchObject({ version: 2, digest: keyring(2).digest });
    reopened.close();
    const reader = StoreReader.open(join(dir, STORE_FILE));
    expect(reader.keyring()).toMatchObject({ version: 2 });
    reader.close();
  });

  it("a damaged keyring in the store trusts nothing, and says to push it again", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir);
    store.persistPrepared(txn("k1", 1, 1), { body: keyring(1) }, 1, 1_000);
    store.persistOutcome("k1", "committed", 1_100);
    const trust = new PlanTrust(null, "main-street");
    trust.useKeyring(() => store.committedKeyring());
    expect(trust.state()).toMatchObject({ kind: "keys", keyring: { version: 1 } });
    const db = new Database(join(dir, STORE_FILE));
    const body = JSON.parse((db.prepare("SELECT body FROM keyring").get() as { body: string }).body);
    body.keys[0].name = "mallory"; // the digest no longer matches
    db.prepare("UPDATE keyring SET body = ?").run(JSON.stringify(body));
    db.close();
    expect(trust.state()).toEqual({
      kind: "unreadable",
      dir: "the store's keyring",
      reason: "the stored keyring's digest does not match its content: push the keyring again",
    });
    store.close();
  });
});
