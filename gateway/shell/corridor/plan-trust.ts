import { type KeyObject, verify } from "node:crypto";
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
import type { KeyringVerdict } from "./participant-ports.js";
import {
  type CompiledKeyring,
  type DirectoryTrust,
  keyringRefusal,
  mergeTrust,
  usableKeysAfter,
} from "../../core/corridor/keyring.js";
import { formatPath } from "../../core/issues.js";
import { compileKeyring, ed25519PublicKey, publicKeyFingerprint } from "../../protocol/keyring.js";

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
  const key = ed25519PublicKey(pem);
  if (typeof key === "string") throw new KeysDirectoryError(`${file} is ${key}`);
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
      known = { stamp, publicKey, fingerprint: publicKeyFingerprint(publicKey) };
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
      const keyring = state.keyring
        ? ` and the corridor's keyring version ${state.keyring.version} (a keyring change needs ${state.threshold ?? 1} signature${(state.threshold ?? 1) === 1 ? "" : "s"})`
        : "";
      return `plans and schedules must be signed by one of ${live.length} trusted key${live.length === 1 ? "" : "s"} in ${state.dir}${keyring}${live.length > 0 ? ` (${live.map((k) => k.name).join(", ")})` : ""}${state.keys.length > live.length ? `; ${state.keys.length - live.length} revoked` : ""}`;
    }
  }
}

/** A keyring as stored (its compiled form) back to a keyring file's shape, to be compiled and checked again. */
function asKeyringFile(stored: unknown): unknown {
  const k = stored as Partial<CompiledKeyring> | null;
  if (typeof k !== "object" || k === null || !Array.isArray(k.keys) || !Array.isArray(k.revoked))
    return stored;
  return {
    kind: "keyring",
    corridor: k.corridor,
    version: k.version,
    threshold: k.threshold,
    keys: k.keys.map((key: Partial<CompiledKeyring["keys"][number]>) => ({
      name: key?.name,
      publicKey: key?.publicKey,
    })),
    revoked: k.revoked.map((r: Partial<CompiledKeyring["revoked"][number]>) => ({
      fingerprint: r?.fingerprint,
      name: r?.name,
    })),
  };
}

/**
 * The participant's signature check on a gateway: its trusted-keys directory (null: none configured),
 * the corridor's keyring in force in its store (core/corridor/keyring.ts; `useKeyring`), and its
 * corridor, which every signature must name.
 */
export class PlanTrust {
  /** The public keys of the last read, by fingerprint, for `verify`. */
  private keys = new Map<string, KeyObject>();
  private readonly cache: KeyCache = new Map();
  private keyringSource: () => unknown = () => null;
  /** The keyring in force as last compiled, by its stored text: compiled again only when it changes. */
  private keyringRead: {
    readonly text: string;
    readonly keyring: CompiledKeyring | string;
    /** Its public keys, parsed once, by fingerprint. */
    readonly publicKeys: ReadonlyMap<string, KeyObject>;
  } | null = null;

  constructor(
    readonly dir: string | null,
    readonly corridor: string,
  ) {}

  /** Where the keyring in force is kept (the gateway's store): its keys count with the directory's. */
  useKeyring(source: () => unknown): void {
    this.keyringSource = source;
    this.keyringRead = null;
  }

  /** The directory as read now (its keys kept for `verify`). */
  private directory(): DirectoryTrust {
    this.keys = new Map();
    if (this.dir === null) return { kind: "none" };
    let read: KeysDirectory;
    try {
      read = readKeysDirectory(this.dir, this.cache);
    } catch (error) {
      return { kind: "unreadable", dir: this.dir, reason: (error as Error).message };
    }
    this.keys = new Map(read.keys.map((k) => [k.fingerprint, k.publicKey]));
    return { kind: "read", dir: this.dir, keys: read.keys, revocations: read.revocations };
  }

  /**
   * The keyring in force, compiled again from the store (a store is input too: a damaged one trusts
   * nothing rather than something else), or why it cannot be read; null: none committed.
   */
  keyringInForce(): CompiledKeyring | string | null {
    const stored = this.keyringSource();
    if (stored === null || stored === undefined) return null;
    const damaged = (stored as { damaged?: unknown }).damaged;
    if (typeof damaged === "string") return `the stored keyring is damaged (${damaged})`;
    const digest = (stored as { digest?: unknown }).digest;
    // Compiled again whenever the stored text changes (a few keys: well under a millisecond).
    const text = JSON.stringify(stored);
    let read = this.keyringRead;
    if (read === null || read.text !== text) {
      const compiled = compileKeyring(asKeyringFile(stored), this.corridor);
      const publicKeys = new Map<string, KeyObject>();
      for (const key of compiled.ok ? compiled.value.keys : []) {
        const parsed = ed25519PublicKey(key.publicKey);
        if (typeof parsed !== "string") publicKeys.set(key.fingerprint, parsed);
      }
      read = this.keyringRead = {
        text,
        publicKeys,
        keyring: !compiled.ok
          ? `the stored keyring is not valid (${compiled.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join("; ")})`
          : compiled.value.digest !== digest
            ? "the stored keyring's digest does not match its content"
            : compiled.value,
      };
    }
    return read.keyring;
  }

  /** The trust as the directory and the keyring in force say now. */
  state(): TrustState {
    return this.trustWith(this.directory());
  }

  private trustWith(
    directory: DirectoryTrust,
    keyring: CompiledKeyring | string | null = this.keyringInForce(),
  ): TrustState {
    if (typeof keyring === "string")
      return { kind: "unreadable", dir: "the store's keyring", reason: `${keyring}: push the keyring again` };
    if (keyring !== null)
      for (const [fingerprint, key] of this.keyringRead?.publicKeys ?? [])
        if (!this.keys.has(fingerprint)) this.keys.set(fingerprint, key);
    return mergeTrust(directory, keyring);
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

  /**
   * The verdict on a keyring change (core/corridor/keyring.ts): compiled here from what the PREPARE
   * carried, its signatures counted against the keys trusted here now. `known`: the keyring content this
   * gateway received earlier under the same version, if any.
   */
  checkKeyring(
    planFile: unknown,
    signatures: readonly WireSignature[],
    known: { readonly digest: string } | null,
  ): KeyringVerdict {
    const compiled = compileKeyring(planFile, this.corridor);
    if (!compiled.ok)
      return {
        ok: false,
        reason: `the keyring is not valid: ${compiled.issues
          .slice(0, 5)
          .map((i) => `${formatPath(i.path)}: ${i.message}`)
          .join("; ")}`,
      };
    const directory = this.directory();
    // A damaged keyring in force is replaced by pushing one again, signed by keys the directory trusts
    // (the root of trust put on by hand): it would trust nothing otherwise, and take nothing.
    const inForce = this.keyringInForce();
    const trust =
      typeof inForce === "string" ? mergeTrust(directory, null) : this.trustWith(directory, inForce);
    const refusal = keyringRefusal(
      trust,
      compiled.value,
      usableKeysAfter(directory, compiled.value),
      known,
      signatures,
      (fp, statement, value) => this.verify(fp, statement, value),
    );
    return refusal === null ? { ok: true, keyring: compiled.value } : { ok: false, reason: refusal };
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
