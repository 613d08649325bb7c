import { X509Certificate } from "node:crypto";
import type { Command } from "commander";
import { Counter, Registry } from "prom-client";
import { type RunningBroker, startBroker } from "../broker/broker.js";
import { DEFAULT_PUBLISH_LIMITS, type PublishLimits } from "../broker/publish-limit.js";
import { hashPassword, loadBrokerUsers } from "../broker/users.js";
import { createLogger } from "../shell/log.js";
import { startHttpEndpoint } from "../shell/http-server.js";
import { parseListenAddress, parsePort } from "./broker-options.js";
import { readRegularFile, UnreadableFileError } from "../config/read-file.js";
import { explainPortInUse } from "./port-in-use.js";
import { UsageError } from "./usage-error.js";

interface BrokerCommandOptions {
  host: string;
  port: string;
  users?: string;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
  requireClientCert?: boolean;
  publishRate: string;
  publishBurst: string;
  publishMaxDelayMs: string;
  http?: string;
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
    .option(
      "--client-ca <file>",
      "CA certificate (PEM) that issues client certificates: with --tls-cert, a client logs in with one as the user named by its CN (docs/mtls.md)",
    )
    .option(
      "--require-client-cert",
      "with --client-ca: refuse every connection without a client certificate (no password logins)",
    )
    .option(
      "--publish-rate <n>",
      "PUBLISHes per second per login (per client id without --users); past it a publish is held, then dropped (docs/protocol.md)",
      String(DEFAULT_PUBLISH_LIMITS.ratePerSecond),
    )
    .option(
      "--publish-burst <n>",
      "PUBLISHes at once above the rate before any is held",
      String(DEFAULT_PUBLISH_LIMITS.burst),
    )
    .option(
      "--publish-max-delay-ms <ms>",
      "the longest a publish is held for its turn; one that would wait longer is dropped, counted and logged",
      String(DEFAULT_PUBLISH_LIMITS.maxDelayMs),
    )
    .option("--http <host:port>", "serve /metrics (Prometheus) and /healthz here, e.g. 127.0.0.1:9200")
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

/**
 * `--client-ca`, checked before anything listens: it goes with TLS and a users file (a certificate
 * names a user of it), and must be a CA certificate still valid (else no client could log in).
 */
function clientCaOf(
  options: BrokerCommandOptions,
  hasUsers: boolean,
): { pem: Buffer; subject: string; validTo: string } | null {
  if (!options.clientCa) {
    if (options.requireClientCert) throw new UsageError("--require-client-cert needs --client-ca FILE");
    return null;
  }
  if (!options.tlsCert)
    throw new UsageError(
      "--client-ca needs --tls-cert and --tls-key: client certificates are asked for over TLS only",
    );
  if (!hasUsers)
    throw new UsageError(
      "--client-ca needs --users FILE: a client certificate logs in as the user named by its CN",
    );
  const pem = readPem(options.clientCa, "--client-ca");
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(pem);
  } catch (error) {
    throw new UsageError(
      `--client-ca: ${options.clientCa} is not a PEM certificate: ${(error as Error).message}`,
    );
  }
  if (!ca.ca)
    throw new UsageError(
      `--client-ca: ${options.clientCa} is not a CA certificate (${ca.subject.replaceAll("\n", ", ")}; basicConstraints CA:TRUE): give the CA that issued the clients' certificates`,
    );
  if (Date.parse(ca.validTo) <= Date.now())
    throw new UsageError(
      `--client-ca: the CA certificate ${options.clientCa} expired on ${ca.validTo}: no client certificate of it verifies; make a new CA (docs/mtls.md)`,
    );
  return { pem, subject: ca.subject.replaceAll("\n", ", "), validTo: ca.validTo };
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return (
    bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare) || bare === "::ffff:127.0.0.1"
  );
}

/**
 * The broker's counters as Prometheus metrics, read when scraped: what the publish limit passed, held
 * and dropped per login and topic class, refused logins by reason, refused publishes and subscribers
 * cut for not reading.
 */
export function brokerMetrics(running: RunningBroker): Registry {
  const registry = new Registry();
  const registers = [registry];
  const counter = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => [Partial<Record<L, string>>, number][],
  ) =>
    new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  const publishers = () => [...running.publishers];
  counter(
    "greenwave_broker_publish_passed_total",
    "PUBLISHes routed, by login (client:<id> on an open broker)",
    ["login"],
    () => publishers().map(([login, c]) => [{ login }, c.passed]),
  );
  counter(
    "greenwave_broker_publish_delayed_total",
    "PUBLISHes held by the publish limit for their turn, then routed",
    ["login"],
    () => publishers().map(([login, c]) => [{ login }, c.delayed]),
  );
  counter(
    "greenwave_broker_publish_dropped_total",
    "PUBLISHes dropped by the publish limit (acknowledged, never routed nor retained), by login and topic class",
    ["login", "class"],
    () =>
      publishers().flatMap(([login, c]) =>
        Object.entries(c.dropped).map(([cls, n]): [Partial<Record<"login" | "class", string>>, number] => [
          { login, class: cls },
          n ?? 0,
        ]),
      ),
  );
  counter("greenwave_broker_logins_refused_total", "Logins refused, by reason", ["reason"], () => [
    [
      { reason: "bad-credentials" },
      running.counters.authFailures -
        running.counters.certificateLoginsRefused -
        running.logins.rateLimited -
        running.logins.userLimited -
        running.logins.busy,
    ],
    [{ reason: "certificate" }, running.counters.certificateLoginsRefused],
    [{ reason: "address-rate-limit" }, running.logins.rateLimited],
    [{ reason: "user-rate-limit" }, running.logins.userLimited],
    [{ reason: "busy" }, running.logins.busy],
  ]);
  counter(
    "greenwave_broker_publish_refused_total",
    "PUBLISHes refused (the connection closed), by reason",
    ["reason"],
    () => [
      [{ reason: "acl" }, running.counters.publishDenied],
      [{ reason: "too-large" }, running.counters.tooLarge],
    ],
  );
  counter(
    "greenwave_broker_slow_subscribers_total",
    "Subscribers disconnected for not reading for 60 s (what was queued for them is lost)",
    [],
    () => [[{}, running.counters.slowSubscribers]],
  );
  counter(
    "greenwave_broker_client_certificates_refused_total",
    "TLS connections closed right after the handshake for their client certificate (docs/mtls.md), by reason",
    ["reason"],
    () => Object.entries(running.counters.certificatesRefused).map(([reason, n]) => [{ reason }, n]),
  );
  counter("greenwave_broker_connections_total", "Connections accepted", [], () => [
    [{}, running.counters.connections],
  ]);
  return registry;
}

/** A whole number within [min, max], or a usage error naming the flag. */
function wholeNumber(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(
      `${flag} must be a whole number from ${String(min)} to ${String(max)}, got "${value}"`,
    );
  return n;
}

export function parsePublishLimits(options: {
  publishRate: string;
  publishBurst: string;
  publishMaxDelayMs: string;
}): PublishLimits {
  return {
    ratePerSecond: wholeNumber(options.publishRate, "--publish-rate", 1, 1_000_000),
    burst: wholeNumber(options.publishBurst, "--publish-burst", 1, 1_000_000),
    maxDelayMs: wholeNumber(options.publishMaxDelayMs, "--publish-max-delay-ms", 0, 60_000),
  };
}

async function runBroker(options: BrokerCommandOptions): Promise<void> {
  const port = parsePort(options.port, "--port");
  const publishLimits = parsePublishLimits(options);
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey))
    throw new UsageError("--tls-cert and --tls-key go together");
  const users = options.users ? loadBrokerUsers(options.users) : null;
  const clientCa = clientCaOf(options, users !== null);
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
    publishLimits,
    ...(options.tlsCert && options.tlsKey
      ? {
          tls: {
            cert: readPem(options.tlsCert, "--tls-cert"),
            key: readPem(options.tlsKey, "--tls-key"),
            ...(clientCa
              ? { clientCa: clientCa.pem, requireClientCert: options.requireClientCert === true }
              : {}),
          },
        }
      : {}),
    onLog: (level, message, detail) => log[level](detail ?? {}, message),
  }).catch((error: unknown) => explainPortInUse(error, "the broker", "--port"));
  if (!users)
    log.warn(
      "no --users file: the broker is OPEN (no passwords, no ACL); fine on loopback, never in the field",
    );
  const certificateOnly = [...(users?.values() ?? [])].filter((u) => u.passwordHash === null);
  if (certificateOnly.length > 0 && !clientCa)
    log.warn(
      { users: certificateOnly.slice(0, 10).map((u) => u.principal.username), count: certificateOnly.length },
      "users without a passwordHash log in only with a client certificate, and this broker takes none: give --client-ca (docs/mtls.md)",
    );
  if (clientCa)
    log.info(
      { clientCa: clientCa.subject, validTo: clientCa.validTo, required: options.requireClientCert === true },
      "client certificates: a certificate of this CA logs in as the user named by its CN",
    );
  const http = options.http
    ? await (async () => {
        const { host, port: httpPort } = parseListenAddress(options.http as string, "--http");
        return await startHttpEndpoint(host, httpPort, brokerMetrics(running), () => ({
          healthy: true,
        })).catch(async (error: unknown) => {
          // The MQTT listener is open already: closed first, or the process would stay up half started.
          await running.close();
          return explainPortInUse(error, "the broker's metrics", "--http");
        });
      })()
    : null;
  log.info(
    { url: running.url, users: users?.size ?? 0, publishLimits, ...(http ? { http: http.url } : {}) },
    "broker listening",
  );
  await stopped;
  await http?.close();
  await running.close();
  log.info({ counters: running.counters, logins: running.logins }, "broker stopped");
}
