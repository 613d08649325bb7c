import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { readdirSync, readFileSync, type Stats, statSync } from "node:fs";
import { join } from "node:path";
import {
  checkSignature,
  type SignedSubject,
  type TrustedKey,
  type TrustState,
  type WireSignature,
} from "../../core/corridor/plan-signature.js";
import type { PrepareVerdict } from "../../core/corridor/participant.js";

/**
 * A gateway's trusted keys (issue 20, item 3): a directory of Ed25519 public keys, `NAME.pub` (PEM,
 * SPKI), and a revocation list, `revoked` (one `FINGERPRINT NAME REVOKED-AT` a line, `#` comments),
 * which `greenwave keys` writes (docs/threat-model.md#signed-plans). Read again for every PREPARE, so
 * that a key added or revoked counts from the next push without a restart (a few small files: well
 * under a millisecond, and PREPAREs are rare).
 *
 * Trust is on when the directory holds a public key or a revocation: revoking every key never turns
 * the check off. A directory that cannot be read (or holds a file that is not what it should be) trusts
 * nothing: the gateway votes no, saying why.
 */

export const REVOCATION_FILE = "revoked";
export const PUBLIC_KEY_SUFFIX = ".pub";
/** A key's name: its file's name without `.pub`. */
export const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** More keys than a corridor has operators is a mistake (or an attack on the start-up time). */
const MAX_KEYS = 256;
const MAX_KEY_FILE_BYTES = 4096;
const MAX_REVOCATION_FILE_BYTES = 256 * 1024;

/** A public key's fingerprint: sha256 of its SPKI DER encoding, lower-case hex (as `ssh-keygen -l` does in spirit). */
export function keyFingerprint(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex");
}

export interface Revocation {
  readonly fingerprint: string;
  readonly name: string;
  readonly at: string;
}

export interface KeysDirectory {
  readonly keys: readonly (TrustedKey & { readonly publicKey: KeyObject; readonly file: string })[];
  readonly revocations: readonly Revocation[];
}

/** Why a file in the keys directory cannot be used. */
export class KeysDirectoryError extends Error {
  override readonly name = "KeysDirectoryError";
}

function checkedStats(file: string, maxBytes: number): Stats {
  const stats = statSync(file);
  if (!stats.isFile()) throw new KeysDirectoryError(`${file} is not a regular file`);
  if (stats.size > maxBytes)
    throw new KeysDirectoryError(`${file} is ${stats.size} bytes, more than a ${maxBytes}-byte limit`);
  return stats;
}

function readSmallFile(file: string, maxBytes: number): string {
  checkedStats(file, maxBytes);
  return readFileSync(file, "utf8");
}

/** Public keys already parsed, by file, while the file's identity, size and time stay the same. */
export type KeyCache = Map<
  string,
  { readonly stamp: string; readonly publicKey: KeyObject; readonly fingerprint: string }
>;

/** An Ed25519 public key from its PEM text; KeysDirectoryError naming the file otherwise. */
export function parsePublicKey(pem: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new KeysDirectoryError(`${file} is not a PEM public key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new KeysDirectoryError(`${file} is a ${key.asymmetricKeyType ?? "?"} key, not Ed25519`);
  return key;
}

export function parseRevocations(text: string, file: string): Revocation[] {
  const revocations: Revocation[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [fingerprint, name, at] = line.split(/\s+/);
    if (!fingerprint || !/^[0-9a-f]{64}$/.test(fingerprint))
      throw new KeysDirectoryError(
        `${file} line ${index + 1}: "${line.slice(0, 80)}" does not start with a key fingerprint (64 hex characters)`,
      );
    revocations.push({ fingerprint, name: name ?? "?", at: at ?? "?" });
  }
  return revocations;
}

/**
 * Reads a keys directory: every `NAME.pub` and the revocation list. Throws (KeysDirectoryError or the
 * fs error) if it cannot. With a cache, a key file unchanged since the last read (same inode, size and
 * modification time) is not parsed again.
 */
export function readKeysDirectory(dir: string, cache?: KeyCache): KeysDirectory {
  const names = readdirSync(dir).sort();
  const revocationText = names.includes(REVOCATION_FILE)
    ? readSmallFile(join(dir, REVOCATION_FILE), MAX_REVOCATION_FILE_BYTES)
    : "";
  const revocations = parseRevocations(revocationText, join(dir, REVOCATION_FILE));
  const revoked = new Set(revocations.map((r) => r.fingerprint));
  const keyFiles = names.filter((n) => n.endsWith(PUBLIC_KEY_SUFFIX));
  if (keyFiles.length > MAX_KEYS)
    throw new KeysDirectoryError(`${dir} holds ${keyFiles.length} public keys, more than ${MAX_KEYS}`);
  const keys = keyFiles.map((fileName) => {
    const name = fileName.slice(0, -PUBLIC_KEY_SUFFIX.length);
    const file = join(dir, fileName);
    if (!KEY_NAME.test(name))
      throw new KeysDirectoryError(`${file}: a key's name is 1-64 letters, digits, ".", "_" or "-"`);
    const stats = checkedStats(file, MAX_KEY_FILE_BYTES);
    const stamp = `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
    let known = cache?.get(file);
    if (known?.stamp !== stamp) {
      const publicKey = parsePublicKey(readFileSync(file, "utf8"), file);
      known = { stamp, publicKey, fingerprint: keyFingerprint(publicKey) };
      cache?.set(file, known);
    }
    const { publicKey, fingerprint } = known;
    return { name, file, fingerprint, publicKey, revoked: revoked.has(fingerprint) };
  });
  if (cache) for (const file of cache.keys()) if (!keys.some((k) => k.file === file)) cache.delete(file);
  return { keys, revocations };
}

/** What a gateway's trust amounts to, said once at start-up (and by `keys list`). */
export function describeTrust(state: TrustState): string {
  switch (state.kind) {
    case "off":
      return "no trusted keys: this gateway takes unsigned plans and schedules from anyone who may send it a PREPARE";
    case "unreadable":
      return `trusted keys unreadable (${state.dir}: ${state.reason}): every plan and schedule will be refused until it is fixed`;
    case "keys": {
      const live = state.keys.filter((k) => !k.revoked);
      return `plans and schedules must be signed by one of ${live.length} trusted key${live.length === 1 ? "" : "s"} in ${state.dir}${live.length > 0 ? ` (${live.map((k) => k.name).join(", ")})` : ""}${state.keys.length > live.length ? `; ${state.keys.length - live.length} revoked` : ""}`;
    }
  }
}

/**
 * The participant's signature check on a gateway: its trusted-keys directory (null: none configured)
 * and its corridor, which every signature must name.
 */
export class PlanTrust {
  /** The public keys of the last read, by fingerprint, for `verify`. */
  private keys = new Map<string, KeyObject>();
  private readonly cache: KeyCache = new Map();

  constructor(
    readonly dir: string | null,
    readonly corridor: string,
  ) {}

  /** The trust as the directory says now. */
  state(): TrustState {
    if (this.dir === null) return { kind: "off" };
    let read: KeysDirectory;
    try {
      read = readKeysDirectory(this.dir, this.cache);
    } catch (error) {
      return { kind: "unreadable", dir: this.dir, reason: (error as Error).message };
    }
    this.keys = new Map(read.keys.map((k) => [k.fingerprint, k.publicKey]));
    if (read.keys.length === 0 && read.revocations.length === 0) return { kind: "off" };
    return {
      kind: "keys",
      dir: this.dir,
      keys: read.keys.map(({ name, fingerprint, revoked }) => ({ name, fingerprint, revoked })),
    };
  }

  /** The verdict on a change this gateway compiled (`subject`: its own digest) and the signature it came with. */
  check(subject: Omit<SignedSubject, "corridor">, signature: WireSignature | null): PrepareVerdict {
    return checkSignature(
      this.state(),
      { ...subject, corridor: this.corridor },
      signature,
      (fp, statement, value) => this.verify(fp, statement, value),
    );
  }

  private verify(fingerprint: string, statement: string, value: string): boolean {
    const key = this.keys.get(fingerprint);
    if (!key) return false;
    try {
      return verify(null, Buffer.from(statement, "utf8"), key, Buffer.from(value, "base64"));
    } catch {
      return false;
    }
  }
}
