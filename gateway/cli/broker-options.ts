import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { statSync } from "node:fs";
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
  certFile?: string;
  keyFile?: string;
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
    .option("--ca-file <file>", "CA certificate (PEM) of an mqtts:// broker")
    .option(
      "--cert-file <file>",
      "client certificate (PEM) for an mqtts:// broker that takes them: it logs in as the user named by its CN (docs/mtls.md)",
    )
    .option("--key-file <file>", "the client certificate's private key (PEM, unencrypted, mode 0600)");
}

/** A password is a line; a CA bundle a few hundred kB at most. Anything larger is not one. */
const MAX_PASSWORD_FILE_BYTES = 4096;
const MAX_CA_FILE_BYTES = 1_000_000;
/** A certificate with its chain is a few kB; a private key a few hundred bytes. */
const MAX_CERT_FILE_BYTES = 1_000_000;
const MAX_KEY_FILE_BYTES = 64 * 1024;

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
  const certificate = clientCertificateOf(flags, url);
  if (certificate && flags.username !== undefined && flags.username !== certificate.name)
    throw new UsageError(
      `--username ${flags.username} is not the name in the client certificate (CN ${certificate.name}): the broker logs a certificate in as its CN and refuses another name; leave --username out`,
    );
  const username = flags.username ?? certificate?.name;
  const password = flags.passwordFile
    ? readSecret(flags.passwordFile, "the password file (--password-file)", MAX_PASSWORD_FILE_BYTES)
    : process.env.GREENWAVE_BROKER_PASSWORD;
  return {
    url,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(flags.caFile ? { ca: readSecret(flags.caFile, "the CA file (--ca-file)", MAX_CA_FILE_BYTES) } : {}),
    ...(certificate ? { cert: certificate.cert, key: certificate.key } : {}),
  };
}

/** A client certificate and its key, as mqtt.js takes them, and the user it logs in as (its CN). */
interface ClientCertificate {
  readonly cert: string;
  readonly key: string;
  readonly name: string;
}

/**
 * `--cert-file` and `--key-file`, checked before any connection: both regular files of sane size, the
 * key open to its owner only (as `plan sign` insists of its keys), a PEM certificate with one CN (the user it logs
 * in as: docs/mtls.md) and the key its own. An expired certificate is not refused here: a gateway
 * runs its intersection without the broker, and `greenwave doctor` says the certificate has expired.
 */
function clientCertificateOf(flags: BrokerFlags, url: string): ClientCertificate | null {
  if (!flags.certFile && !flags.keyFile) return null;
  if (!flags.certFile || !flags.keyFile) throw new UsageError("--cert-file and --key-file go together");
  if (!url.startsWith("mqtts://"))
    throw new UsageError(
      `a client certificate (--cert-file) is sent over TLS only: give an mqtts:// broker, not ${url}`,
    );
  const cert = readSecret(flags.certFile, "the client certificate (--cert-file)", MAX_CERT_FILE_BYTES);
  const key = readSecret(flags.keyFile, "the client key (--key-file)", MAX_KEY_FILE_BYTES);
  const mode = statSync(flags.keyFile).mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new UsageError(
      `--key-file: ${flags.keyFile} is open to others (mode ${mode.toString(8).padStart(4, "0")}): a private key must be 0600 and owned by the user the command runs as (chmod 600 ${flags.keyFile}), and a new certificate is due if others may have read it`,
    );
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new UsageError(
      `--cert-file: ${flags.certFile} is not a PEM certificate: ${(error as Error).message}`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new UsageError(
      `--key-file: ${flags.keyFile} is not an unencrypted PEM private key: ${(error as Error).message}`,
    );
  }
  if (!certificate.checkPrivateKey(privateKey))
    throw new UsageError(
      `--key-file: ${flags.keyFile} is not the key of the certificate ${flags.certFile}: give the key its request was made with (docs/mtls.md)`,
    );
  const name = commonName(certificate.subject);
  if (name === null)
    throw new UsageError(
      `--cert-file: ${flags.certFile} has no single CN in its subject (${certificate.subject.replaceAll("\n", ", ")}): the broker takes its CN as the user name (docs/mtls.md)`,
    );
  return { cert, key, name };
}

/** The subject's one CN (Node writes a subject as `CN=gw-elm\nO=…` lines), or null with none or several. */
export function commonName(subject: string): string | null {
  const names = subject
    .split("\n")
    .filter((line) => line.startsWith("CN="))
    .map((line) => line.slice(3));
  return names.length === 1 && names[0] !== "" ? (names[0] as string) : null;
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
