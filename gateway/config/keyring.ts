import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import type { Checked, Issue } from "../core/issues.js";
import { type CompiledKeyring, type KeyringKey, keyringContent } from "../core/corridor/keyring.js";
import { keyringFileSchema } from "./keyring-schema.js";
import { forbiddenKeyIssues, schemaIssues } from "./validate.js";

/**
 * A keyring as every party compiles it (core/corridor/keyring.ts): `greenwave keys sign` and `keys
 * push` from the file, each gateway from what a PREPARE carries and, at every check, from its store.
 * Each computes its own fingerprints and digest from the PEM keys themselves: nothing a sender claims
 * about them is taken.
 */

/** A public key's fingerprint: sha256 of its SPKI DER encoding, lower-case hex (as `ssh-keygen -l` does in spirit). */
export function publicKeyFingerprint(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex");
}

/** An Ed25519 public key from PEM, or why not. */
export function ed25519PublicKey(pem: string): KeyObject | string {
  // createPublicKey takes a private key too (and derives its public half): refuse it, loudly, rather
  // than pass over a secret that was put where public keys go.
  if (/PRIVATE KEY/.test(pem))
    return "a PRIVATE key: only public keys (NAME.pub) go here; make a new key pair, since this one's secret has been copied";
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    return `not a PEM public key: ${(error as Error).message}`;
  }
  if (key.asymmetricKeyType !== "ed25519") return `a ${key.asymmetricKeyType ?? "?"} key, not Ed25519`;
  return key;
}

/**
 * The keyring of `raw` (a keyring file as its schema reads it, or what a PREPARE carried) for corridor
 * `corridor`: every problem at once, each at its field path.
 */
export function compileKeyring(raw: unknown, corridor: string): Checked<CompiledKeyring> {
  const forbidden = forbiddenKeyIssues(raw);
  if (forbidden.length > 0) return { ok: false, issues: forbidden };
  const parsed = keyringFileSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, issues: schemaIssues(parsed.error) };
  const file = parsed.data;
  const issues: Issue[] = [];
  if (file.corridor !== corridor)
    issues.push({
      path: ["corridor"],
      message: `the keyring is for corridor ${file.corridor}, not ${corridor}`,
    });
  const keys: KeyringKey[] = [];
  const names = new Set<string>();
  const fingerprints = new Set<string>();
  for (const [index, entry] of file.keys.entries()) {
    const key = ed25519PublicKey(entry.publicKey);
    if (typeof key === "string") {
      issues.push({ path: ["keys", index, "publicKey"], message: `${entry.name}: ${key}` });
      continue;
    }
    const fingerprint = publicKeyFingerprint(key);
    if (names.has(entry.name))
      issues.push({ path: ["keys", index, "name"], message: `${entry.name} is named twice: one name a key` });
    if (fingerprints.has(fingerprint))
      issues.push({
        path: ["keys", index, "publicKey"],
        message: `${entry.name}: the same key is listed twice`,
      });
    names.add(entry.name);
    fingerprints.add(fingerprint);
    keys.push({
      name: entry.name,
      fingerprint,
      publicKey: key.export({ type: "spki", format: "pem" }) as string,
    });
  }
  const revoked = file.revoked.map((r) => ({ fingerprint: r.fingerprint, name: r.name ?? "?" }));
  for (const [index, r] of revoked.entries())
    if (fingerprints.has(r.fingerprint))
      issues.push({
        path: ["revoked", index, "fingerprint"],
        message: `key ${keys.find((k) => k.fingerprint === r.fingerprint)?.name ?? r.fingerprint} is both trusted and revoked: take it out of keys`,
      });
  if (issues.length > 0) return { ok: false, issues };
  const body = { corridor: file.corridor, version: file.version, threshold: file.threshold, keys, revoked };
  const digest = createHash("sha256").update(keyringContent(body), "utf8").digest("hex");
  return { ok: true, value: { kind: "keyring", ...body, digest } };
}
