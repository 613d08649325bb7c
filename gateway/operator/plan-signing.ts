import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { basename, join } from "node:path";
import { z } from "zod";
import { publicKeyFingerprint } from "../config/keyring.js";
import { readRegularFile, UnreadableFileError } from "../config/read-file.js";
import { type SignedSubject, signedStatement, type WireSignature } from "../core/corridor/plan-signature.js";
import { wireSignatureSchema } from "../protocol/corridor-messages.js";
import { OperatorError } from "./operator-client.js";
import {
  KEY_NAME,
  PUBLIC_KEY_SUFFIX,
  readKeysDirectory,
  REVOCATION_FILE,
} from "../shell/corridor/plan-trust.js";

/**
 * The operator's side of signed plans (issue 20, item 3): Ed25519 key pairs from Node's own crypto,
 * detached signature files beside the plan (`PLAN.yaml.sig`), and revocations. The gateway's side is
 * gateway/shell/corridor/plan-trust.ts; what is signed, gateway/core/corridor/plan-signature.ts.
 */

export const PRIVATE_KEY_SUFFIX = ".key";
export const SIGNATURE_SUFFIX = ".sig";
const MAX_KEY_FILE_BYTES = 4096;
const MAX_SIGNATURE_FILE_BYTES = 4096;

/** What `keys`, `plan sign` and `plan push` refuse, with what to do: exit 1 with the message. */
export class SigningError extends OperatorError {
  override name = "SigningError";
}

export interface GeneratedKey {
  readonly name: string;
  readonly privateKeyFile: string;
  readonly publicKeyFile: string;
  readonly fingerprint: string;
}

/** Creates a file that must not exist yet, with this mode (a key is never overwritten). */
function createExclusive(file: string, content: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(file, "wx", mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST")
      throw new SigningError(
        `${file} exists already: a key is never overwritten (choose another --name, or remove it yourself)`,
      );
    throw new SigningError(`cannot create ${file}: ${(error as Error).message}`);
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  // The umask may have taken bits away, never added: set exactly what was asked.
  chmodSync(file, mode);
}

/** `keys generate`: NAME.key (PKCS#8 PEM, 0600) and NAME.pub (SPKI PEM, 0644) in `dir`. */
export function generateSigningKey(name: string, dir: string): GeneratedKey {
  if (!KEY_NAME.test(name))
    throw new SigningError(
      `--name "${name}": a key's name is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const privateKeyFile = join(dir, `${name}${PRIVATE_KEY_SUFFIX}`);
  const publicKeyFile = join(dir, `${name}${PUBLIC_KEY_SUFFIX}`);
  if (existsSync(publicKeyFile))
    throw new SigningError(
      `${publicKeyFile} exists already: a key is never overwritten (choose another --name)`,
    );
  createExclusive(privateKeyFile, privateKey.export({ type: "pkcs8", format: "pem" }) as string, 0o600);
  createExclusive(publicKeyFile, publicKey.export({ type: "spki", format: "pem" }) as string, 0o644);
  return { name, privateKeyFile, publicKeyFile, fingerprint: publicKeyFingerprint(publicKey) };
}

/** A private signing key: the file's mode 0600 or stricter (as ssh insists), Ed25519. */
export function loadSigningKey(file: string): { name: string; key: KeyObject; fingerprint: string } {
  let text: string;
  try {
    text = readRegularFile(file, MAX_KEY_FILE_BYTES).toString("utf8");
  } catch (error) {
    if (error instanceof UnreadableFileError)
      throw new SigningError(`cannot read the key ${file}: ${error.reason}`);
    throw error;
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new SigningError(
      `${file} is readable by others (mode ${mode.toString(8).padStart(4, "0")}): a private key must be 0600 (chmod 600 ${file}), and a new key is due if others may have read it`,
    );
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (error) {
    throw new SigningError(`${file} is not a PEM private key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new SigningError(
      `${file} is a ${key.asymmetricKeyType ?? "?"} key, not Ed25519 (greenwave keys generate makes one)`,
    );
  const name = basename(file).replace(/\.key$/, "");
  return { name: KEY_NAME.test(name) ? name : "key", key, fingerprint: publicKeyFingerprint(key) };
}

/** A detached signature file: who signed, with which key, what (the subject), when, and the signature. */
const signatureFileSchema = z.strictObject({
  kind: z.literal("greenwave-signature"),
  v: z.literal(1),
  signer: wireSignatureSchema.shape.signer,
  key: wireSignatureSchema.shape.key,
  signed: z.strictObject({
    corridor: z.string().min(1).max(64),
    kind: z.enum(["plan", "schedule", "keyring"]),
    id: z.string().min(1).max(64),
    version: z.number().int(),
    digest: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  value: wireSignatureSchema.shape.value,
  at: z.string().max(64),
});
export type SignatureFile = z.infer<typeof signatureFileSchema>;

export function signSubject(
  subject: SignedSubject,
  signingKey: ReturnType<typeof loadSigningKey>,
  atWallMs: number,
): SignatureFile {
  const value = sign(null, Buffer.from(signedStatement(subject), "utf8"), signingKey.key).toString("base64");
  return {
    kind: "greenwave-signature",
    v: 1,
    signer: signingKey.name,
    key: signingKey.fingerprint,
    signed: { ...subject },
    value,
    at: new Date(atWallMs).toISOString(),
  };
}

/** The signature file of `file` (FILE.sig), if there is one. */
export function signatureFileFor(file: string): string {
  return `${file}${SIGNATURE_SUFFIX}`;
}

/** A small JSON file's content, or a SigningError that says which file and what to do (`again`). */
function readJsonFile(file: string, maxBytes: number, what: string, again: string): unknown {
  let text: string;
  try {
    text = readRegularFile(file, maxBytes).toString("utf8");
  } catch (error) {
    if (error instanceof UnreadableFileError)
      throw new SigningError(`cannot read the ${what} ${file}: ${error.reason}`);
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SigningError(`${file} is not a signature file (not JSON): ${again}`);
  }
}

/** The first problem zod found, as a message's tail. */
function firstIssue(error: z.ZodError): string {
  return `${error.issues[0]?.path.join(".") ?? ""} ${error.issues[0]?.message ?? ""}`;
}

export function readSignatureFile(file: string): SignatureFile {
  const parsed = readJsonFile(
    file,
    MAX_SIGNATURE_FILE_BYTES,
    "signature",
    "sign the plan again (greenwave plan sign)",
  );
  const checked = signatureFileSchema.safeParse(parsed);
  if (!checked.success)
    throw new SigningError(`${file} is not a signature file: ${firstIssue(checked.error)}`);
  return checked.data;
}

/**
 * A keyring's signatures (core/corridor/keyring.ts): one file beside it (KEYRING.yaml.sig) holding a
 * list, since a keyring may need several signers; each `greenwave keys sign` adds one (a signer's
 * earlier signature is replaced).
 */
const signatureListSchema = z.strictObject({
  kind: z.literal("greenwave-signatures"),
  v: z.literal(1),
  signatures: z.array(signatureFileSchema).max(16),
});
const MAX_SIGNATURE_LIST_BYTES = 64 * 1024;

/** The signatures of a list file (or of a single signature file); none if `file` does not exist. */
export function readSignatureList(file: string): SignatureFile[] {
  if (!existsSync(file)) return [];
  const parsed = readJsonFile(
    file,
    MAX_SIGNATURE_LIST_BYTES,
    "signatures",
    "sign the keyring again (greenwave keys sign)",
  );
  const single = signatureFileSchema.safeParse(parsed);
  if (single.success) return [single.data];
  const list = signatureListSchema.safeParse(parsed);
  if (!list.success) throw new SigningError(`${file} is not a signature list: ${firstIssue(list.error)}`);
  return list.data.signatures;
}

/** Adds a signature to a list file (replacing the same key's), written whole; how many it now holds. */
export function addToSignatureList(file: string, signature: SignatureFile): number {
  const signatures = [...readSignatureList(file).filter((s) => s.key !== signature.key), signature];
  if (signatures.length > 16)
    throw new SigningError(`${file} holds 16 signatures already: no keyring needs more`);
  writeFileSync(file, `${JSON.stringify({ kind: "greenwave-signatures", v: 1, signatures }, null, 2)}\n`, {
    mode: 0o644,
  });
  return signatures.length;
}

/**
 * The signature to send with a push: the file's, once it is seen to be about this very content (the
 * gateways check it again, with their own digest; this only says early, and clearly, that it is not).
 */
export function signatureForPush(
  signature: SignatureFile,
  file: string,
  subject: SignedSubject,
): WireSignature {
  const s = signature.signed;
  const differs = (["corridor", "kind", "id", "version", "digest"] as const).filter(
    (k) => s[k] !== subject[k],
  );
  if (differs.length > 0)
    throw new SigningError(
      `${file} signs ${s.kind} ${s.id} v${s.version} (digest ${s.digest.slice(0, 12)}…) on corridor ${s.corridor}, not this ${subject.kind} ${subject.id} v${subject.version} (digest ${subject.digest.slice(0, 12)}…) on ${subject.corridor}: its ${differs.join(", ")} differ; sign this file again`,
    );
  return { signer: signature.signer, key: signature.key, value: signature.value };
}

/** `keys revoke NAME`: appends the key's fingerprint to the directory's revocation list (idempotent). */
export function revokeKey(
  name: string,
  dir: string,
  atWallMs: number,
): { fingerprint: string; already: boolean } {
  const read = readKeysDirectory(dir);
  const key = read.keys.find((k) => k.name === name);
  if (!key)
    throw new SigningError(
      `no public key ${name}${PUBLIC_KEY_SUFFIX} in ${dir} (keys there: ${read.keys.map((k) => k.name).join(", ") || "none"})`,
    );
  if (read.revocations.some((r) => r.fingerprint === key.fingerprint))
    return { fingerprint: key.fingerprint, already: true };
  const file = join(dir, REVOCATION_FILE);
  const header = existsSync(file)
    ? ""
    : "# Revoked signing keys: FINGERPRINT NAME REVOKED-AT. A gateway refuses what they signed. Written by greenwave keys revoke.\n";
  appendFileSync(file, `${header}${key.fingerprint} ${name} ${new Date(atWallMs).toISOString()}\n`, {
    mode: 0o644,
  });
  return { fingerprint: key.fingerprint, already: false };
}
