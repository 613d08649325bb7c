import { generateKeyPairSync } from "node:crypto";
import Database from "better-sqlite3";
import { compileKeyring } from "../../gateway/config/keyring.js";
import { type CompiledKeyring, KEYRING_KEY } from "../../gateway/core/corridor/keyring.js";
import type { GatewayStore } from "../../gateway/store/store.js";

/**
 * Keyring files and stored keyrings for the keyring's tests (core/corridor/keyring.ts): the YAML an
 * operator writes, and a store that committed one — to be damaged, as a store on a failing disk is.
 */

/** A keyring file's text: these keys trusted (PEM as NAME.pub holds it), these revoked. */
export function keyringYaml(keyring: {
  readonly corridor: string;
  readonly version: number;
  readonly threshold?: number;
  readonly keys: readonly { readonly name: string; readonly publicKeyPem: string }[];
  readonly revoked?: readonly { readonly fingerprint: string; readonly name: string }[];
}): string {
  const indent = (pem: string) =>
    pem
      .trim()
      .split("\n")
      .map((line) => `      ${line}`)
      .join("\n");
  const revoked = keyring.revoked ?? [];
  return [
    "kind: keyring",
    `corridor: ${keyring.corridor}`,
    `version: ${keyring.version}`,
    ...(keyring.threshold !== undefined ? [`threshold: ${keyring.threshold}`] : []),
    "keys:",
    ...keyring.keys.map((k) => `  - name: ${k.name}\n    publicKey: |\n${indent(k.publicKeyPem)}`),
    "revoked:",
    ...(revoked.length === 0 ? ["  []"] : []),
    ...revoked.map((r) => `  - { fingerprint: ${r.fingerprint}, name: ${r.name} }`),
    "",
  ].join("\n");
}

/** Commits keyring v1 of `corridor` (one new key, bob's) in `store`, as transaction k1 would. */
export function commitKeyring(store: GatewayStore, corridor: string): CompiledKeyring {
  const pem = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }) as string;
  const compiled = compileKeyring(
    { kind: "keyring", corridor, version: 1, keys: [{ name: "bob", publicKey: pem }] },
    corridor,
  );
  if (!compiled.ok) throw new Error("fixture keyring invalid");
  store.persistPrepared(
    {
      txnId: "k1",
      coordinator: "@alice",
      token: 1,
      participants: ["x1"],
      plan: { planId: KEYRING_KEY, version: 1 },
      activationWallMs: 50_000,
    },
    { body: compiled.value },
    1,
    1_000,
  );
  store.persistOutcome("k1", "committed", 1_100);
  return compiled.value;
}

/** The stored keyring's body set to `mangle` (an SQL expression of `body`) in the store file. */
export function mangleStoredKeyring(storeFile: string, mangle: string): void {
  const db = new Database(storeFile);
  try {
    db.prepare(`UPDATE keyring SET body = ${mangle}`).run();
  } finally {
    db.close();
  }
}
