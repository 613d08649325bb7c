import { parseEnv } from "node:util";
import { readRegularFile } from "../config/read-file.js";

/** The env file the unit reads (EnvironmentFile=), and the secret its ExecStart always names. */
export const GATEWAY_ENV_FILE = "/etc/greenwave/gateway.env";
export const GATEWAY_PASSWORD_FILE = "/etc/greenwave/broker.secret";
/** An env file is a few lines; anything larger is not one. */
const MAX_ENV_FILE_BYTES = 64 * 1024;

/** The gateway flags the doctor needs, as the service passes them in GREENWAVE_ARGS. */
export interface GatewayArgs {
  readonly broker?: string;
  readonly username?: string;
  readonly passwordFile?: string;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly config?: string;
  readonly dataDir?: string;
}

export interface GatewayEnv {
  readonly file: string;
  readonly brokerUrl?: string;
  readonly args: GatewayArgs;
}

const FLAGS: Readonly<Record<string, keyof GatewayArgs>> = {
  "--broker": "broker",
  "--username": "username",
  "--password-file": "passwordFile",
  "--ca-file": "caFile",
  "--cert-file": "certFile",
  "--key-file": "keyFile",
  "--config": "config",
  "--data-dir": "dataDir",
};

/**
 * Reads the service's env file with Node's own dotenv parser (util.parseEnv), throwing
 * UnreadableFileError for a file that cannot be read.
 */
export function readGatewayEnv(file: string): GatewayEnv {
  const env = parseEnv(readRegularFile(file, MAX_ENV_FILE_BYTES).toString("utf8"));
  const url = env.GREENWAVE_BROKER_URL;
  return {
    file,
    ...(url ? { brokerUrl: url } : {}),
    args: parseGatewayArgs(env.GREENWAVE_ARGS ?? ""),
  };
}

/**
 * The flags of GREENWAVE_ARGS that matter here. The unit passes it as `$GREENWAVE_ARGS`, unquoted,
 * which systemd splits at whitespace (no shell quoting), so this splits it the same way. A flag given
 * twice: the last wins, as commander does in the gateway.
 */
export function parseGatewayArgs(value: string): GatewayArgs {
  const words = value.split(/\s+/).filter((w) => w !== "");
  const args: Record<string, string> = {};
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    const eq = word.indexOf("=");
    const flag = eq > 0 ? word.slice(0, eq) : word;
    const key = Object.hasOwn(FLAGS, flag) ? FLAGS[flag] : undefined;
    if (!key) continue;
    const flagValue = eq > 0 ? word.slice(eq + 1) : words[++i];
    if (flagValue !== undefined) args[key] = flagValue;
  }
  return args;
}
