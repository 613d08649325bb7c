import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { planDigest } from "../../gateway/config/plan-digest.js";
import { keyringSubject } from "../../gateway/core/corridor/keyring.js";
import type { WireSignature } from "../../gateway/core/corridor/plan-signature.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/node/corridor-participant.js";
import { type LoadedKeyring, loadKeyring } from "../../gateway/operator/keyring-file.js";
import { generateSigningKey, loadSigningKey, signSubject } from "../../gateway/operator/plan-signing.js";
import { pushKeyring, pushPlan } from "../../gateway/operator/plan-push.js";
import type { HaltAfter } from "../../gateway/shell/corridor/coordinator-host.js";
import { PlanTrust } from "../../gateway/shell/corridor/plan-trust.js";
import { keyringYaml } from "./keyring-files.js";
import { type Cleanups, pushRig, TEST_CORRIDOR } from "./push-rig.js";

/**
 * The push rig (push-rig.ts) for the corridor keyring's tests (core/corridor/keyring.ts): signing keys
 * for alice, bob, carol, dave and mallory, every gateway's keys directory trusting alice's public key
 * only (the trust put on by hand), keyring files written from those keys, their signatures, and pushes
 * of keyrings and of signed plans.
 */

export const SIGNERS = ["alice", "bob", "carol", "dave", "mallory"] as const;
export type Signer = (typeof SIGNERS)[number];
type Key = ReturnType<typeof generateSigningKey>;

export async function keyringRig(cleanups: Cleanups) {
  const own = cleanups.tempDir("greenwave-signing-keys-");
  const trusted = cleanups.tempDir("greenwave-trusted-keys-");
  const keys = Object.fromEntries(SIGNERS.map((name) => [name, generateSigningKey(name, own)])) as Record<
    Signer,
    Key
  >;
  copyFileSync(keys.alice.publicKeyFile, join(trusted, "alice.pub"));
  const rig = await pushRig(cleanups, {
    corridorSettings: () => ({
      ...DEFAULT_CORRIDOR_SETTINGS,
      planTrust: new PlanTrust(trusted, TEST_CORRIDOR),
    }),
  });
  const keyringDir = cleanups.tempDir("greenwave-keyrings-");
  const keyOf = (k: Signer | Key): Key => (typeof k === "string" ? keys[k] : k);

  /** A keyring file of the test corridor: these keys trusted, these revoked, this threshold. */
  const keyring = (
    version: number,
    trust: readonly (Signer | Key)[],
    revoke: readonly (Signer | Key)[] = [],
    threshold = 1,
  ): LoadedKeyring => {
    const file = join(keyringDir, `keyring-v${version}-${randomBytes(4).toString("hex")}.yaml`);
    writeFileSync(
      file,
      keyringYaml({
        corridor: TEST_CORRIDOR,
        version,
        threshold,
        keys: trust
          .map(keyOf)
          .map((k) => ({ name: k.name, publicKeyPem: readFileSync(k.publicKeyFile, "utf8") })),
        revoked: revoke.map(keyOf).map((k) => ({ fingerprint: k.fingerprint, name: k.name })),
      }),
    );
    return loadKeyring(file, TEST_CORRIDOR);
  };
  /** Each signer's signature of the keyring, in order (a signer named twice signs twice). */
  const sign = (loaded: LoadedKeyring, ...signers: (Signer | Key)[]): WireSignature[] =>
    signers.map((k) => {
      const file = signSubject(
        keyringSubject(loaded.keyring),
        loadSigningKey(keyOf(k).privateKeyFile),
        Date.now(),
      );
      return { signer: file.signer, key: file.key, value: file.value };
    });
  /** alice pushes a keyring; `haltAfter`: her coordinator dies there. */
  const pushKeyringOf = (loaded: LoadedKeyring, signatures: WireSignature[], haltAfter?: HaltAfter) =>
    rig.withCoordinator((store) =>
      pushKeyring({
        ...rig.alice,
        atWallMs: null,
        leadMs: 3000,
        keyring: loaded,
        signatures,
        store,
        ...(haltAfter ? { haltAfter } : {}),
      }),
    );
  /** alice pushes a plan of the fixture with `signer`'s signature. */
  const pushPlanSignedBy = (name: string, signer: Signer | Key) => {
    const plan = rig.plan(name);
    const subject = {
      corridor: TEST_CORRIDOR,
      kind: "plan" as const,
      id: plan.raw.id,
      version: plan.raw.version,
      digest: planDigest(plan.raw),
    };
    const file = signSubject(subject, loadSigningKey(keyOf(signer).privateKeyFile), Date.now());
    return rig.withCoordinator((store) =>
      pushPlan({
        ...rig.alice,
        atWallMs: null,
        leadMs: 3000,
        plan,
        store,
        signature: { signer: file.signer, key: file.key, value: file.value },
      }),
    );
  };
  /** The keyring version each gateway holds, in the fixture's order (null: none committed). */
  const versionsInForce = () =>
    rig.fixture.ids.map(
      (id) =>
        (rig.corridor.stores.get(id)?.committedKeyring() as { version?: number } | null)?.version ?? null,
    );
  return {
    ...rig,
    own,
    trusted,
    keys,
    keyring,
    sign,
    pushKeyring: pushKeyringOf,
    pushPlanSignedBy,
    versionsInForce,
  };
}

export type KeyringRig = Awaited<ReturnType<typeof keyringRig>>;
