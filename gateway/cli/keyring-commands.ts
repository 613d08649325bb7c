import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { findCorridorFile } from "../config/find-corridor.js";
import { loadCorridor } from "../config/load.js";
import { keyringSubject } from "../core/corridor/keyring.js";
import { shortFingerprint } from "../core/corridor/plan-signature.js";
import { loadKeyring } from "../operator/keyring-file.js";
import { type PushResult, pushKeyring } from "../operator/plan-push.js";
import {
  addToSignatureList,
  loadSigningKey,
  readSignatureList,
  signatureFileFor,
  signatureForPush,
  signSubject,
  SigningError,
} from "../operator/plan-signing.js";
import { CoordinatorStore } from "../store/coordinator-store.js";
import { brokerSettings } from "./broker-options.js";
import { addCoordinatorFlags, type CoordinatorFlags, coordinatorTiming, renderPush } from "./txn-commands.js";
import { UsageError } from "./usage-error.js";
import { DEFAULT_DATA_DIR, storeFile } from "./data-dir.js";
import { StoreReader } from "../store/store-reader.js";
import { describeTrust, PlanTrust } from "../shell/corridor/plan-trust.js";

interface KeyringPushFlags extends CoordinatorFlags {
  keyring: string;
  corridor?: string;
  signatures?: string;
}

/**
 * `greenwave keys sign KEYRING` and `greenwave keys push --keyring KEYRING` (issue 20, item 3: trusted
 * keys rotated by a committed corridor change; core/corridor/keyring.ts has the rules,
 * docs/threat-model.md#rotation-by-a-committed-change the procedure).
 */
export function registerKeyringCommands(keys: Command): void {
  keys
    .command("sign")
    .description(
      "add your signature to a keyring file (kind: keyring): KEYRING.sig lists them; a keyring change needs as many as the gateways' threshold",
    )
    .argument("<keyring>", "the keyring file")
    .requiredOption("--key <file>", "your private key (greenwave keys generate)")
    .option("--out <file>", "the signature list to add to (default: the keyring file's name + .sig)")
    .action((file: string, flags: { key: string; out?: string }) => {
      const { keyring } = loadKeyring(file);
      const subject = keyringSubject(keyring);
      const signature = signSubject(subject, loadSigningKey(flags.key), Date.now());
      const target = flags.out ?? signatureFileFor(file);
      const count = addToSignatureList(target, signature);
      process.stdout.write(
        `signed keyring v${keyring.version} (digest ${keyring.digest.slice(0, 12)}) for corridor ${keyring.corridor} as ${signature.signer} (key ${shortFingerprint(signature.key)}): ${target} holds ${count} signature${count === 1 ? "" : "s"}\n`,
      );
    });
  const push = keys
    .command("push")
    .description(
      "commit a keyring (the corridor's trusted signing keys and revocations) to every intersection atomically; exit 0 only if committed",
    )
    .requiredOption("--keyring <file>", "the keyring file (kind: keyring)")
    .option("--corridor <file>", "the corridor file (default: found beside the keyring or one directory up)")
    .option("--signatures <file>", "its signatures (default: KEYRING.sig beside it)");
  addCoordinatorFlags(
    push,
    "the keyring is committed at least this far ahead of its decision's deadline",
  ).action((flags: KeyringPushFlags) => runKeyringPush(flags));
}

async function runKeyringPush(flags: KeyringPushFlags): Promise<void> {
  const broker = brokerSettings(flags);
  if (!broker) throw new UsageError("--broker is required");
  if (flags.via)
    throw new UsageError(
      "--via: a keyring is pushed by its operator's own coordinator, not through a gateway",
    );
  if (flags.corridor !== undefined && !existsSync(flags.corridor))
    throw new UsageError(`--corridor ${flags.corridor}: no such file: give the corridor file`);
  const first = loadKeyring(flags.keyring);
  const corridor = loadCorridor(flags.corridor ?? findCorridorFile(first, "keyring"));
  const loaded = loadKeyring(flags.keyring, corridor.raw.id);
  const sigFile = flags.signatures ?? signatureFileFor(flags.keyring);
  const subject = keyringSubject(loaded.keyring);
  const signatures = readSignatureList(sigFile).map((s) => signatureForPush(s, sigFile, subject));
  if (signatures.length === 0)
    throw new SigningError(
      `no signatures for keyring v${loaded.keyring.version} (${sigFile}): a keyring is taken only when signed by keys the gateways trust (greenwave keys sign ${flags.keyring} --key KEY)`,
    );
  const { leadMs, ackTimeoutMs } = coordinatorTiming(flags);
  const store = CoordinatorStore.open(resolve(flags.dataDir));
  try {
    const result = await pushKeyring({
      ...broker,
      name: flags.as,
      corridor,
      keyring: loaded,
      signatures,
      atWallMs: null,
      leadMs,
      store,
      ackTimeoutMs,
    });
    report(result, flags);
  } finally {
    store.close();
  }
}

function report(result: PushResult, flags: KeyringPushFlags): void {
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(renderPush(result));
  if (result.outcome !== "committed") process.exitCode = 1;
}

/**
 * `keys trust`: what a gateway trusts, read at the cabinet as the gateway reads it — its keys directory
 * and the corridor's keyring committed in its store (read only, safe beside the running gateway).
 */
export function registerTrustCommand(keys: Command): void {
  keys
    .command("trust")
    .description(
      "what a gateway trusts now: its keys directory and the corridor's keyring committed in its store (at the cabinet, read only)",
    )
    .requiredOption("--intersection <id>", "the gateway's intersection")
    .option("--data-dir <dir>", `the gateway's data directory (default ${DEFAULT_DATA_DIR})`)
    .option("--dir <dir>", "its trusted keys directory (/etc/greenwave/keys); default: none")
    .option("--json", "as JSON")
    .action((flags: { intersection: string; dataDir?: string; dir?: string; json?: boolean }) => {
      const reader = StoreReader.open(storeFile(flags.dataDir ?? DEFAULT_DATA_DIR, flags.intersection));
      let stored: unknown;
      try {
        stored = reader.keyring();
      } finally {
        reader.close();
      }
      const corridor = String((stored as { corridor?: unknown } | null)?.corridor ?? "");
      const trust = new PlanTrust(flags.dir === undefined ? null : resolve(flags.dir), corridor);
      trust.useKeyring(() => stored);
      const state = trust.state();
      const keyring = trust.keyringInForce();
      // A gateway that trusts nothing refuses every change: not a state to report with exit 0.
      if (state.kind === "unreadable") process.exitCode = 1;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ intersection: flags.intersection, trust: state, keyring: typeof keyring === "string" ? { error: keyring } : keyring }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(`${flags.intersection}: ${describeTrust(state)}\n`);
      if (keyring !== null && typeof keyring !== "string")
        process.stdout.write(
          `keyring v${keyring.version} of corridor ${keyring.corridor} (digest ${keyring.digest.slice(0, 12)}), threshold ${keyring.threshold}\n`,
        );
      if (state.kind === "keys")
        for (const key of state.keys)
          process.stdout.write(
            `${key.name.padEnd(24)} ${key.fingerprint}  ${key.revoked ? "REVOKED" : "trusted"}  (${key.source ?? "directory"})\n`,
          );
    });
}
