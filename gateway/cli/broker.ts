import type { Command } from "commander";
import { startBroker } from "../broker/broker.js";
import { hashPassword, loadBrokerUsers } from "../broker/users.js";
import { createLogger } from "../shell/log.js";
import { parsePort } from "./broker-options.js";
import { readRegularFile, UnreadableFileError } from "../config/read-file.js";
import { explainPortInUse } from "./port-in-use.js";
import { UsageError } from "./usage-error.js";

interface BrokerCommandOptions {
  host: string;
  port: string;
  users?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export function registerBrokerCommand(program: Command): void {
  const broker = program
    .command("broker")
    .description("run the embedded MQTT broker (aedes) with per-user passwords and the greenwave topic ACL")
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port (1883; 8883 is usual with TLS)", "1883")
    .option(
      "--users <file>",
      "broker users file (kind: broker-users); without it the broker is open to everyone",
    )
    .option("--tls-cert <file>", "TLS certificate (PEM); with --tls-key, the broker speaks mqtts")
    .option("--tls-key <file>", "TLS private key (PEM)")
    .action((options: BrokerCommandOptions) => runBroker(options));
  broker
    .command("hash-password")
    .description("read a password on standard input, print its hash for the users file")
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const password = Buffer.concat(chunks)
        .toString("utf8")
        .replace(/\r?\n$/, "");
      if (password.length < 8) throw new UsageError("the password must be at least 8 characters");
      process.stdout.write(`${await hashPassword(password)}\n`);
    });
}

/** A certificate or key: a regular file of at most 1 MB, never a FIFO or a device (it would hang or balloon). */
function readPem(file: string, flag: string): Buffer {
  try {
    return readRegularFile(file, 1_000_000);
  } catch (error) {
    if (error instanceof UnreadableFileError)
      throw new UsageError(`${flag}: cannot read ${file}: ${error.reason}`);
    throw error;
  }
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return (
    bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare) || bare === "::ffff:127.0.0.1"
  );
}

async function runBroker(options: BrokerCommandOptions): Promise<void> {
  const port = parsePort(options.port, "--port");
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey))
    throw new UsageError("--tls-cert and --tls-key go together");
  const users = options.users ? loadBrokerUsers(options.users) : null;
  if (!users && !isLoopback(options.host))
    throw new UsageError(
      `an open broker (no --users file: no passwords, no ACL) listens on loopback only, not on ${options.host}: anyone who reaches it could command every intersection. Give --users FILE (see the README's "Run it for real"), or --host 127.0.0.1`,
    );
  const log = createLogger("greenwave-broker");
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((done) => {
    stopRequested = done;
  });
  process.once("SIGINT", () => stopRequested());
  process.once("SIGTERM", () => stopRequested());
  const running = await startBroker({
    host: options.host,
    port,
    users,
    ...(options.tlsCert && options.tlsKey
      ? { tls: { cert: readPem(options.tlsCert, "--tls-cert"), key: readPem(options.tlsKey, "--tls-key") } }
      : {}),
    onLog: (level, message, detail) => log[level](detail ?? {}, message),
  }).catch((error: unknown) => explainPortInUse(error, "the broker", "--port"));
  if (!users)
    log.warn(
      "no --users file: the broker is OPEN (no passwords, no ACL); fine on loopback, never in the field",
    );
  log.info({ url: running.url, users: users?.size ?? 0 }, "broker listening");
  await stopped;
  await running.close();
  log.info({ counters: running.counters }, "broker stopped");
}
