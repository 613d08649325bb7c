import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { loadCorridor, type LoadedCorridor, loadPlan } from "../config/load.js";
import { findScheduleCorridor, type LoadedSchedule, loadSchedule } from "../config/load-schedule.js";
import type { PlanFile } from "../config/schema.js";
import { planDigest } from "../config/plan-digest.js";
import { scheduleBundle, scheduleBundleDigest } from "../config/schedule-bundle.js";
import { type SignedSubject, shortFingerprint } from "../core/corridor/plan-signature.js";
import {
  generateSigningKey,
  loadSigningKey,
  PRIVATE_KEY_SUFFIX,
  readSignatureFile,
  revokeKey,
  signatureFileFor,
  signatureForPush,
  signSubject,
  SigningError,
} from "../operator/plan-signing.js";
import type { WireSignature } from "../core/corridor/plan-signature.js";
import { describeTrust, PlanTrust, readKeysDirectory } from "../shell/corridor/plan-trust.js";
import { UsageError } from "./usage-error.js";
import { registerKeyringCommands, registerTrustCommand } from "./keyring-commands.js";

/**
 * `greenwave keys generate|list|revoke`, `greenwave plan sign` and `greenwave schedule sign` (issue 20,
 * item 3; docs/threat-model.md#signed-plans): Ed25519 keys to sign corridor changes with, the
 * detached signatures, and the trusted-keys directory each gateway checks them against.
 */
export function registerKeysCommands(program: Command): void {
  const keys = program
    .command("keys")
    .description(
      "signing keys for plans and schedules, and the trusted keys of a gateway (docs/threat-model.md)",
    );
  keys
    .command("generate")
    .description(
      "make an Ed25519 key pair: NAME.key (private, 0600: keep it off the gateways) and NAME.pub (copy it into every gateway's trusted keys)",
    )
    .requiredOption(
      "--name <name>",
      "the key's name (letters, digits, . _ -): who signs with it, e.g. alice-2026",
    )
    .requiredOption("--out <dir>", "where to write the two files (created 0700 if missing)")
    .action((flags: { name: string; out: string }) => {
      if (!existsSync(flags.out)) mkdirSync(flags.out, { recursive: true, mode: 0o700 });
      const key = generateSigningKey(flags.name, flags.out);
      process.stdout.write(
        `generated Ed25519 key ${key.name}, fingerprint ${key.fingerprint}\n` +
          `  private ${key.privateKeyFile} (0600: sign with it, greenwave plan sign PLAN --key ${key.privateKeyFile})\n` +
          `  public  ${key.publicKeyFile} (copy it into every gateway's trusted keys, /etc/greenwave/keys)\n`,
      );
    });
  keys
    .command("list")
    .description(
      "the keys of a directory (a gateway's trusted keys, or your own): name, fingerprint, revoked or not",
    )
    .requiredOption("--dir <dir>", "the keys directory (a gateway's: /etc/greenwave/keys)")
    .option("--json", "as JSON")
    .action((flags: { dir: string; json?: boolean }) => {
      const read = readKeys(flags.dir);
      const privateKeys = new Set(
        readdirSync(flags.dir)
          .filter((f) => f.endsWith(PRIVATE_KEY_SUFFIX))
          .map((f) => f.slice(0, -PRIVATE_KEY_SUFFIX.length)),
      );
      const rows = read.keys.map((k) => ({
        name: k.name,
        fingerprint: k.fingerprint,
        revoked: k.revoked,
        privateKey: privateKeys.has(k.name),
      }));
      // Revoked keys whose public key file is gone stay revoked: listed too.
      const known = new Set(rows.map((r) => r.fingerprint));
      const orphans = read.revocations.filter((r) => !known.has(r.fingerprint));
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ dir: flags.dir, keys: rows, revokedWithoutKeyFile: orphans }, null, 2)}\n`,
        );
        return;
      }
      if (rows.length === 0 && orphans.length === 0) {
        process.stdout.write(
          `no keys in ${flags.dir}: a gateway with this directory takes unsigned plans and schedules\n`,
        );
        return;
      }
      for (const r of rows)
        process.stdout.write(
          `${r.name.padEnd(24)} ${r.fingerprint}  ${r.revoked ? "REVOKED" : "trusted"}${r.privateKey ? "  (private key here)" : ""}\n`,
        );
      for (const o of orphans)
        process.stdout.write(`${o.name.padEnd(24)} ${o.fingerprint}  REVOKED ${o.at} (no public key file)\n`);
    });
  keys
    .command("revoke")
    .description(
      "revoke a key in a trusted-keys directory: the gateway refuses what it signed from its next PREPARE on (do it on every gateway)",
    )
    .argument("<name>", "the key's name (its NAME.pub in the directory)")
    .requiredOption("--dir <dir>", "the trusted keys directory (/etc/greenwave/keys)")
    .action((name: string, flags: { dir: string }) => {
      readKeys(flags.dir);
      const revoked = revokeKey(name, flags.dir, Date.now());
      process.stdout.write(
        revoked.already
          ? `${name} (${shortFingerprint(revoked.fingerprint)}) was revoked already in ${flags.dir}\n`
          : `revoked ${name} (${revoked.fingerprint}) in ${flags.dir}: what it signed is refused here from now on; revoke it on every gateway\n`,
      );
    });
  registerKeyringCommands(keys);
  registerTrustCommand(keys);
}

function readKeys(dir: string) {
  try {
    return readKeysDirectory(dir);
  } catch (error) {
    throw new SigningError(`cannot read the keys directory ${dir}: ${(error as Error).message}`);
  }
}

function writeSignature(
  file: string,
  out: string | undefined,
  subject: SignedSubject,
  keyFile: string,
): void {
  const signature = signSubject(subject, loadSigningKey(keyFile), Date.now());
  const target = out ?? signatureFileFor(file);
  writeFileSync(target, `${JSON.stringify(signature, null, 2)}\n`, { mode: 0o644 });
  process.stdout.write(
    `signed ${subject.kind} ${subject.id} v${subject.version} (digest ${subject.digest.slice(0, 12)}) for corridor ${subject.corridor} as ${signature.signer} (key ${shortFingerprint(signature.key)}): ${target}\n`,
  );
}

/** What a plan file's signature covers: its corridor, id, version and content digest. */
export function planSubject(file: string): SignedSubject {
  return planSubjectOf(loadPlan(file).raw);
}

export function planSubjectOf(raw: PlanFile): SignedSubject {
  return { corridor: raw.corridor, kind: "plan", id: raw.id, version: raw.version, digest: planDigest(raw) };
}

/** `plan sign PLAN --key KEY`: PLAN.sig beside it. */
export function registerPlanSign(plan: Command): void {
  plan
    .command("sign")
    .description(
      "sign a plan with your private key: writes PLAN.sig (the plan's corridor, id, version and content digest, signed); plan push sends it along",
    )
    .argument("<plan>", "the plan file")
    .requiredOption("--key <file>", "your private key (greenwave keys generate)")
    .option("--out <file>", "where to write the signature (default: the plan file's name + .sig)")
    .action((file: string, flags: { key: string; out?: string }) =>
      writeSignature(file, flags.out, planSubject(file), flags.key),
    );
}

/** What a schedule's signature covers: the bundle `schedule push` sends (the schedule, its plans, the time reference). */
export function scheduleSubject(file: string, corridorFile: string | undefined): SignedSubject {
  const corridor = loadCorridor(corridorFile ?? findScheduleCorridor(file));
  return scheduleSubjectOf(loadSchedule(file, corridor), corridor);
}

export function scheduleSubjectOf(schedule: LoadedSchedule, corridor: LoadedCorridor): SignedSubject {
  return {
    corridor: corridor.raw.id,
    kind: "schedule",
    id: schedule.raw.id,
    version: schedule.raw.version,
    digest: scheduleBundleDigest(scheduleBundle(schedule, corridor)),
  };
}

/** `schedule sign SCHEDULE --key KEY`: SCHEDULE.sig beside it, over the schedule with every plan it names. */
export function registerScheduleSign(schedule: Command): void {
  schedule
    .command("sign")
    .description(
      "sign a schedule with your private key, with every plan it names (a plan edited later voids it): writes SCHEDULE.sig; schedule push sends it along",
    )
    .argument("<schedule>", "the schedule file")
    .requiredOption("--key <file>", "your private key (greenwave keys generate)")
    .option("--corridor <file>", "the corridor file (default: found from the schedule, as for schedule push)")
    .option("--out <file>", "where to write the signature (default: the schedule file's name + .sig)")
    .action((file: string, flags: { key: string; corridor?: string; out?: string }) =>
      writeSignature(file, flags.out, scheduleSubject(file, flags.corridor), flags.key),
    );
}

/**
 * The signature a push sends: `--signature FILE`, else FILE.sig beside the plan or schedule if there is
 * one, else none (unsigned). A signature of other content is refused here, before any lease is taken.
 */
export function pushSignature(
  file: string,
  explicit: string | undefined,
  subject: () => SignedSubject,
): WireSignature | undefined {
  const sigFile = explicit ?? signatureFileFor(file);
  if (explicit === undefined && !existsSync(sigFile)) return undefined;
  return signatureForPush(readSignatureFile(sigFile), sigFile, subject());
}

/** Where the field package keeps a gateway's trusted keys: `keys/` beside its intersection file (/etc/greenwave/keys). */
export const TRUSTED_KEYS_BESIDE_CONFIG = "keys";

/**
 * `greenwave gateway --trusted-keys DIR`, or by default `keys/` beside the intersection file if that
 * directory exists (/etc/greenwave/keys on an installed gateway). A named directory that does not exist
 * is a typo, refused; no directory at all is no trust: unsigned plans are taken, and the log says so
 * loudly at start-up.
 */
export function gatewayPlanTrust(
  flag: string | undefined,
  configFile: string,
  corridorId: string,
): PlanTrust {
  const besideConfig = join(dirname(resolve(configFile)), TRUSTED_KEYS_BESIDE_CONFIG);
  let dir: string | null;
  if (flag !== undefined) {
    if (!existsSync(flag) || !statSync(flag).isDirectory())
      throw new UsageError(
        `--trusted-keys ${flag}: no such directory (create it and copy the signers' NAME.pub files into it)`,
      );
    dir = resolve(flag);
  } else dir = existsSync(besideConfig) ? besideConfig : null;
  return new PlanTrust(dir, corridorId);
}

/**
 * Says at start-up what the gateway trusts: loudly when nothing (unsigned plans taken), as an error when
 * its keys cannot be read, else which keys (its directory's and the corridor's keyring in force).
 */
export function reportPlanTrust(
  trust: PlanTrust,
  configFile: string,
  log: {
    warn: (o: object, m: string) => void;
    info: (o: object, m: string) => void;
    error: (o: object, m: string) => void;
  },
): void {
  const dir = trust.dir;
  const besideConfig = join(dirname(resolve(configFile)), TRUSTED_KEYS_BESIDE_CONFIG);
  const state = trust.state();
  const summary = describeTrust(state);
  if (state.kind === "off")
    log.warn(
      {
        trustedKeys: dir,
        hint: `put signers' public keys in ${dir ?? besideConfig} (greenwave keys generate) or give --trusted-keys DIR`,
      },
      `UNSIGNED PLANS ACCEPTED: ${summary}`,
    );
  else if (state.kind === "unreadable") log.error({ trustedKeys: dir }, summary);
  else log.info({ trustedKeys: dir, keys: state.keys, keyring: state.keyring ?? null }, summary);
}
