import { createPublicKey, generateKeyPairSync, sign, verify as verifySignature } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CompiledKeyring,
  keyringRefusal,
  keyringSubject,
  mergeTrust,
  usableKeysAfter,
} from "../../gateway/core/corridor/keyring.js";
import { signedStatement, type TrustState } from "../../gateway/core/corridor/plan-signature.js";
import { compileKeyring, publicKeyFingerprint } from "../../gateway/protocol/keyring.js";

/**
 * The corridor keyring's rules (core/corridor/keyring.ts) and its compile (protocol/keyring.ts): what a
 * gateway trusts, and when it takes a keyring change. The end-to-end rotation over the broker is in
 * test/integration/keyring-rotation.test.ts.
 */

const CORRIDOR = "main-street";

function newKey(name: string) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  return {
    name,
    privateKey,
    pem: publicKey.export({ type: "spki", format: "pem" }) as string,
    fingerprint: publicKeyFingerprint(publicKey),
  };
}
const [alice, bob, carol, mallory] = ["alice", "bob", "carol", "mallory"].map(newKey) as [
  ReturnType<typeof newKey>,
  ReturnType<typeof newKey>,
  ReturnType<typeof newKey>,
  ReturnType<typeof newKey>,
];
const all = [alice, bob, carol, mallory];

function keyringFile(
  version: number,
  keys: ReturnType<typeof newKey>[],
  revoked: ReturnType<typeof newKey>[] = [],
  threshold = 1,
) {
  return {
    kind: "keyring",
    corridor: CORRIDOR,
    version,
    threshold,
    keys: keys.map((k) => ({ name: k.name, publicKey: k.pem })),
    revoked: revoked.map((k) => ({ fingerprint: k.fingerprint, name: k.name })),
  };
}

function compiled(...args: Parameters<typeof keyringFile>): CompiledKeyring {
  const result = compileKeyring(keyringFile(...args), CORRIDOR);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

const signedBy = (keyring: CompiledKeyring, key: ReturnType<typeof newKey>) => ({
  signer: key.name,
  key: key.fingerprint,
  value: sign(null, Buffer.from(signedStatement(keyringSubject(keyring)), "utf8"), key.privateKey).toString(
    "base64",
  ),
});

/** The real Ed25519 check, by fingerprint, over the four keys of these tests. */
function verify(fingerprint: string, statement: string, value: string): boolean {
  const key = all.find((k) => k.fingerprint === fingerprint);
  if (!key) return false;
  return verifySignature(
    null,
    Buffer.from(statement, "utf8"),
    createPublicKey(key.pem),
    Buffer.from(value, "base64"),
  );
}

const directory = (keys: ReturnType<typeof newKey>[], revoked: ReturnType<typeof newKey>[] = []) =>
  ({
    kind: "read",
    dir: "/etc/greenwave/keys",
    keys: keys.map((k) => ({ name: k.name, fingerprint: k.fingerprint })),
    revocations: revoked.map((k) => ({ fingerprint: k.fingerprint })),
  }) as const;

describe("compileKeyring", () => {
  it("computes fingerprints and a digest from the keys themselves, whatever their order", () => {
    const a = compiled(1, [alice, bob], [carol]);
    const b = compileKeyring(
      { ...keyringFile(1, [bob, alice], [carol]), keys: keyringFile(1, [bob, alice]).keys },
      CORRIDOR,
    );
    expect(b.ok && b.value.digest).toBe(a.digest);
    expect(a.keys.map((k) => k.fingerprint)).toEqual([alice.fingerprint, bob.fingerprint]);
    expect(compiled(2, [alice, bob], [carol]).digest).not.toBe(a.digest);
    expect(compiled(1, [alice, bob], [carol], 2).digest).not.toBe(a.digest);
  });

  it("says every problem at its field: another corridor, a private key, a key twice, a key trusted and revoked, a prototype key", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const result = compileKeyring(
      {
        ...keyringFile(1, [alice, alice], [alice]),
        corridor: "elsewhere",
        keys: [
          { name: "alice", publicKey: alice.pem },
          { name: "alice", publicKey: alice.pem },
          { name: "leak", publicKey: privateKey.export({ type: "pkcs8", format: "pem" }) as string },
        ],
      },
      CORRIDOR,
    );
    expect(result.ok).toBe(false);
    const issues = result.ok ? [] : result.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(issues).toEqual([
      "corridor: the keyring is for corridor elsewhere, not main-street",
      "keys.1.name: alice is named twice: one name a key",
      "keys.1.publicKey: alice: the same key is listed twice",
      expect.stringMatching(/^keys\.2\.publicKey: leak: a PRIVATE key: only public keys/),
      "revoked.0.fingerprint: key alice is both trusted and revoked: take it out of keys",
    ]);
    const hostile = compileKeyring(JSON.parse(`{"kind":"keyring","__proto__":{"threshold":0}}`), CORRIDOR);
    expect(hostile.ok).toBe(false);
  });
});

describe("mergeTrust", () => {
  it("adds the keyring's keys to the directory's and revokes what either revokes; a keyring cannot un-revoke", () => {
    const keyring = compiled(1, [bob, carol], [alice], 2);
    const trust = mergeTrust(directory([alice, carol], [carol]), keyring);
    expect(trust).toMatchObject({
      kind: "keys",
      threshold: 2,
      keyring: { version: 1, digest: keyring.digest },
      keys: [
        { name: "alice", revoked: true, source: "directory" },
        { name: "carol", revoked: true, source: "directory" },
        { name: "bob", revoked: false, source: "keyring" },
      ],
    });
    expect(mergeTrust({ kind: "none" }, null)).toEqual({ kind: "off" });
    expect(mergeTrust(directory([]), null)).toEqual({ kind: "off" });
    expect(mergeTrust({ kind: "unreadable", dir: "d", reason: "r" }, keyring).kind).toBe("unreadable");
    expect(usableKeysAfter(directory([alice]), keyring)).toBe(2);
  });
});

describe("keyringRefusal", () => {
  const trustNow = (keyring: CompiledKeyring | null = null): TrustState =>
    mergeTrust(directory([alice]), keyring);
  const refusal = (
    trust: TrustState,
    proposed: CompiledKeyring,
    signers: ReturnType<typeof newKey>[],
    known: { digest: string } | null = null,
  ) =>
    keyringRefusal(
      trust,
      proposed,
      usableKeysAfter(directory([alice]), proposed),
      known,
      signers.map((k) => signedBy(proposed, k)),
      verify,
    );

  it("takes a keyring signed by a trusted key, and refuses when this gateway trusts none yet", () => {
    const v1 = compiled(1, [bob], [alice]);
    expect(refusal(trustNow(), v1, [alice])).toBeNull();
    expect(refusal({ kind: "off" }, v1, [alice])).toMatch(/trusts no signing key yet/);
    expect(refusal(trustNow(), v1, [mallory])).toMatch(/has 0 \(mallory .*: not trusted here\)/);
    expect(refusal(trustNow(), v1, [])).toMatch(
      /needs the signatures of 1 distinct key trusted here and has 0:/,
    );
  });

  it("never rolls back; the keyring in force again is taken; other content under a known version is refused", () => {
    const v2 = compiled(2, [bob], [], 1);
    const inForce = trustNow(v2);
    expect(refusal(inForce, compiled(1, [bob]), [alice])).toMatch(/older than the keyring version 2/);
    expect(refusal(inForce, v2, [])).toBeNull();
    expect(refusal(inForce, compiled(2, [bob, carol]), [alice])).toMatch(
      /another keyring is in force here under version 2/,
    );
    const v3 = compiled(3, [bob]);
    expect(refusal(inForce, v3, [alice], { digest: "0".repeat(64) })).toMatch(
      /already received another keyring under version 3/,
    );
    expect(refusal(inForce, v3, [alice], { digest: v3.digest })).toBeNull();
  });

  it("counts distinct trusted, unrevoked keys whose signature verifies, up to the threshold in force; refuses a lock-out", () => {
    const twoNeeded = trustNow(compiled(1, [bob, carol], [], 2));
    const v2 = compiled(2, [bob, carol], [alice], 2);
    expect(refusal(twoNeeded, v2, [bob])).toMatch(
      /needs the signatures of 2 distinct keys trusted here and has 1/,
    );
    expect(refusal(twoNeeded, v2, [bob, bob])).toMatch(/bob .*: signed twice, counted once/);
    expect(refusal(twoNeeded, v2, [bob, carol])).toBeNull();
    // A revoked signer does not count, even with a valid signature.
    const aliceRevoked = mergeTrust(directory([alice], [alice]), compiled(1, [bob, carol], [], 2));
    expect(refusal(aliceRevoked, v2, [alice, bob])).toMatch(/alice .*: revoked here/);
    // Another keyring's signature does not verify for this one.
    const other = compiled(2, [carol]);
    const moved = keyringRefusal(twoNeeded, v2, 3, null, [signedBy(other, bob), signedBy(v2, carol)], verify);
    expect(moved).toMatch(/bob .*: does not verify for this keyring/);
    expect(refusal(twoNeeded, compiled(2, [], [alice, bob, carol], 2), [bob, carol])).toMatch(
      /would leave 0 usable signing keys here for a threshold of 2/,
    );
  });

  it("never takes a change with fewer verified distinct trusted signers than the threshold in force (any signers, any threshold)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.constantFrom(0, 1, 2, 3), { maxLength: 6 }),
        fc.subarray([1, 2, 3]),
        (threshold, signerIndexes, trustedIndexes) => {
          const trusted = trustedIndexes.map((i) => all[i] as ReturnType<typeof newKey>);
          const trust = mergeTrust(directory([alice]), compiled(1, trusted, [], 1));
          const withThreshold = trust.kind === "keys" ? { ...trust, threshold } : trust;
          const proposed = compiled(2, [alice, bob, carol], [], 1);
          const signers = signerIndexes.map((i) => all[i] as ReturnType<typeof newKey>);
          const result = keyringRefusal(
            withThreshold,
            proposed,
            3,
            null,
            signers.map((k) => signedBy(proposed, k)),
            verify,
          );
          const trustedSet = new Set([alice, ...trusted].map((k) => k.fingerprint));
          const distinct = new Set(signers.map((k) => k.fingerprint).filter((f) => trustedSet.has(f)));
          expect(result === null).toBe(distinct.size >= threshold);
        },
      ),
      { numRuns: 200 },
    );
  });
});
