import type { Command } from "commander";
import type { BrokerSettings } from "../node/gateway-node.js";
import { readRegularFile, UnreadableFileError } from "../config/read-file.js";
import { OperatorClient } from "../operator/operator-client.js";
import { UsageError } from "./usage-error.js";

export const DEMO_BROKER_URL = "mqtt://127.0.0.1:1883";

export interface BrokerFlags {
  broker?: string;
  username?: string;
  passwordFile?: string;
  caFile?: string;
}

/** The flags every command that talks to the broker takes. Passwords come from a file or the environment, never argv. */
export function addBrokerFlags(command: Command, defaultUrl: string | null): Command {
  return command
    .option(
      "--broker <url>",
      `MQTT broker (mqtt://host:port or mqtts://host:port)${defaultUrl ? "" : "; none: run without a broker"}`,
      ...(defaultUrl ? [process.env.GREENWAVE_BROKER_URL ?? defaultUrl] : []),
    )
    .option("--username <name>", "broker user name")
    .option("--password-file <file>", "file holding the broker password (or set GREENWAVE_BROKER_PASSWORD)")
    .option("--ca-file <file>", "CA certificate (PEM) of an mqtts:// broker");
}

/** A password is a line; a CA bundle a few hundred kB at most. Anything larger is not one. */
const MAX_PASSWORD_FILE_BYTES = 4096;
const MAX_CA_FILE_BYTES = 1_000_000;

/** A secret named on the command line: a regular file, size-checked before it is read. */
function readSecret(file: string, what: string, maxBytes: number): string {
  try {
    return readRegularFile(file, maxBytes).toString("utf8").trim();
  } catch (error) {
    if (!(error instanceof UnreadableFileError)) throw error;
    throw new UsageError(`cannot read ${what} ${file}: ${error.reason}`);
  }
}

export function brokerSettings(flags: BrokerFlags): BrokerSettings | null {
  const url = flags.broker ?? process.env.GREENWAVE_BROKER_URL;
  if (!url) return null;
  if (!/^mqtts?:\/\/[^/]+$/.test(url))
    throw new UsageError(`--broker must look like mqtt://host:port or mqtts://host:port, got "${url}"`);
  const password = flags.passwordFile
    ? readSecret(flags.passwordFile, "the password file (--password-file)", MAX_PASSWORD_FILE_BYTES)
    : process.env.GREENWAVE_BROKER_PASSWORD;
  return {
    url,
    ...(flags.username !== undefined ? { username: flags.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(flags.caFile ? { ca: readSecret(flags.caFile, "the CA file (--ca-file)", MAX_CA_FILE_BYTES) } : {}),
  };
}

/** "host:port" (IPv6 in brackets) for listeners. */
export function parseListenAddress(value: string, flag: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new UsageError(`${flag} must be host:port (e.g. 127.0.0.1:9100 or [::1]:9100), got "${value}"`);
  return { host: (match[1] ?? match[2]) as string, port };
}

export function parsePort(value: string, flag: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`${flag} must be a port number from 0 to 65535, got "${value}"`);
  return port;
}

/** The operator commands' connection: `--broker` (required), credentials and `--timeout-ms`. */
export async function connectOperator(flags: BrokerFlags & { timeoutMs: string }): Promise<OperatorClient> {
  const timeoutMs = Number(flags.timeoutMs);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
    throw new UsageError(`--timeout-ms must be at least 100, got "${flags.timeoutMs}"`);
  const broker = brokerSettings(flags);
  if (!broker) throw new UsageError("--broker is required");
  return await OperatorClient.connect({ ...broker, timeoutMs });
}
