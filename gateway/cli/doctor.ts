import { existsSync } from "node:fs";
import type { Command } from "commander";
import { UnreadableFileError } from "../config/read-file.js";
import type { BrokerConfig } from "../doctor/broker-check.js";
import { exitCodeOf, renderLines } from "../doctor/check-result.js";
import {
  GATEWAY_ENV_FILE,
  GATEWAY_PASSWORD_FILE,
  type GatewayEnv,
  readGatewayEnv,
} from "../doctor/gateway-env.js";
import { runDoctor } from "../doctor/run-doctor.js";
import { addBrokerFlags, type BrokerFlags, brokerSettings } from "./broker-options.js";
import { UsageError } from "./usage-error.js";

export const DEFAULT_CONFIG_FILE = "/etc/greenwave/intersection.yaml";
export const DEFAULT_DATA_DIR = "/var/lib/greenwave";

interface DoctorFlags extends BrokerFlags {
  config?: string;
  dataDir?: string;
  gatewayEnv?: string;
  json?: boolean;
}

export function registerDoctorCommand(program: Command): void {
  const command = program
    .command("doctor")
    .description(
      "check a gateway where it stands: configuration, each Modbus module, the broker, clock sync, free disk, the store, the service; one line per check (PASS, WARN, FAIL and what to do); exit 1 when a check fails",
    )
    .option(
      "--config <file>",
      `the intersection file (default: ${DEFAULT_CONFIG_FILE}, or --config in GREENWAVE_ARGS)`,
    )
    .option("--data-dir <dir>", `the gateway's data directory (default: ${DEFAULT_DATA_DIR})`)
    // Not --env-file: node takes that one for itself anywhere on its command line, even after the
    // script's name (nodejs/node#54232), and exits 9 before greenwave runs.
    .option(
      "--gateway-env <file>",
      `the service's env file, for GREENWAVE_BROKER_URL and GREENWAVE_ARGS (default: ${GATEWAY_ENV_FILE} when it exists)`,
    )
    .option("--json", "print an array of {check, status, detail, action}");
  addBrokerFlags(command, null).action((flags: DoctorFlags) => doctor(flags));
}

async function doctor(flags: DoctorFlags): Promise<void> {
  const env = loadEnvFile(flags.gatewayEnv);
  const results = await runDoctor({
    configFile: flags.config ?? env?.args.config ?? DEFAULT_CONFIG_FILE,
    dataDir: flags.dataDir ?? env?.args.dataDir ?? DEFAULT_DATA_DIR,
    broker: brokerConfig(flags, env),
  });
  process.stdout.write(flags.json ? `${JSON.stringify(results, null, 2)}\n` : renderLines(results));
  process.exitCode = exitCodeOf(results);
}

/** The env file named with --gateway-env must be readable; the default one is read when it exists. */
function loadEnvFile(file: string | undefined): GatewayEnv | null {
  const named = file ?? (existsSync(GATEWAY_ENV_FILE) ? GATEWAY_ENV_FILE : null);
  if (named === null) return null;
  try {
    return readGatewayEnv(named);
  } catch (error) {
    if (!(error instanceof UnreadableFileError)) throw error;
    throw new UsageError(`cannot read the env file ${named} (--gateway-env): ${error.reason}`);
  }
}

/**
 * The broker settings as the service would have them: its ExecStart passes
 * `--password-file /etc/greenwave/broker.secret $GREENWAVE_ARGS` with GREENWAVE_BROKER_URL from the env
 * file, so flags in GREENWAVE_ARGS win over both. The doctor's own flags win over everything.
 */
function brokerConfig(flags: DoctorFlags, env: GatewayEnv | null): BrokerConfig {
  const args = env?.args ?? {};
  const [url, from] =
    flags.broker !== undefined
      ? [flags.broker, "the command line"]
      : args.broker !== undefined
        ? [args.broker, `GREENWAVE_ARGS in ${env?.file}`]
        : env?.brokerUrl !== undefined
          ? [env.brokerUrl, env.file]
          : [process.env.GREENWAVE_BROKER_URL, "the environment (GREENWAVE_BROKER_URL)"];
  if (!url) return { kind: "none", envFile: env?.file ?? null };
  // Installed (an env file in use), the service always names the secret file; elsewhere only if it is there.
  const defaultSecret = env !== null || existsSync(GATEWAY_PASSWORD_FILE) ? GATEWAY_PASSWORD_FILE : undefined;
  const passwordFile = flags.passwordFile ?? args.passwordFile ?? defaultSecret;
  const username = flags.username ?? args.username;
  const caFile = flags.caFile ?? args.caFile;
  const certFile = flags.certFile ?? args.certFile;
  const keyFile = flags.keyFile ?? args.keyFile;
  try {
    const settings = brokerSettings({
      broker: url,
      ...(username !== undefined ? { username } : {}),
      ...(passwordFile !== undefined ? { passwordFile } : {}),
      ...(caFile !== undefined ? { caFile } : {}),
      ...(certFile !== undefined ? { certFile } : {}),
      ...(keyFile !== undefined ? { keyFile } : {}),
    });
    return settings
      ? { kind: "target", target: settings, from }
      : { kind: "none", envFile: env?.file ?? null };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return { kind: "unusable", problem: error.message, from };
  }
}
