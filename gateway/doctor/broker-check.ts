import { randomBytes, X509Certificate } from "node:crypto";
import mqtt from "mqtt";
import { type CheckResult, fail, pass, warn } from "./check-result.js";

/** The broker the gateway would use, as resolved from the flags, the env file and the password file. */
export interface BrokerTarget {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string | Buffer;
  /** A client certificate and its key (PEM), for a broker that takes them (docs/mtls.md). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export type BrokerConfig =
  | { readonly kind: "none"; readonly envFile: string | null }
  /** `from`: where the settings came from ("/etc/greenwave/gateway.env", "the command line"). */
  | { readonly kind: "target"; readonly target: BrokerTarget; readonly from: string }
  /** The settings themselves are unusable (an unreadable password file, a malformed URL). */
  | { readonly kind: "unusable"; readonly problem: string; readonly from: string };

/** A client certificate closer than this to its end is a warning: time to issue the next one. */
export const CERTIFICATE_RENEWAL_DAYS = 30;

/** How long a broker may take to accept a connection: a healthy one answers in milliseconds. */
export const BROKER_TIMEOUT_MS = 5000;

/** CONNACK refusals: MQTT 3.1.1 return codes (3.2.2.3) and MQTT 5 reason codes (3.2.2.2). */
const BAD_CREDENTIALS = new Set([4, 134]);
const NOT_AUTHORISED = new Set([5, 135]);
const IDENTIFIER_REJECTED = new Set([2, 133]);
const SERVER_UNAVAILABLE = new Set([3, 136]);

/**
 * Connects once with the configured credentials (MQTT 3.1.1, as the gateway does: clean session, a
 * client id of its own so that the running gateway's session is not taken over), then disconnects.
 * Tells refused, unreachable, timed out, bad credentials, not authorised and TLS failures apart.
 */
export async function checkBroker(config: BrokerConfig, timeoutMs = BROKER_TIMEOUT_MS): Promise<CheckResult> {
  if (config.kind === "none")
    return warn(
      "broker",
      "no broker configured: the gateway runs stand-alone",
      `to report to operators, set GREENWAVE_BROKER_URL in ${config.envFile ?? "/etc/greenwave/gateway.env"}`,
    );
  if (config.kind === "unusable")
    return fail("broker", config.problem, `fix the broker settings in ${config.from}`);
  const { target, from } = config;
  const certificate = certificateDays(target);
  const as =
    (target.username ? ` as ${target.username}` : " without a user name") +
    (certificate ? ` (client certificate valid until ${certificate.validTo})` : "");
  const outcome = await connectOnce(target, timeoutMs);
  if (outcome.kind === "connected") {
    const connected = `${target.url}${as}: connected in ${outcome.ms} ms (settings from ${from})`;
    if (certificate && certificate.daysLeft < CERTIFICATE_RENEWAL_DAYS)
      return warn(
        "broker",
        `${connected}; the client certificate ends in ${Math.max(0, Math.floor(certificate.daysLeft))} days`,
        "issue the next certificate now and restart the gateway with it at a quiet hour (docs/mtls.md, rotation): past its end the broker refuses it",
      );
    return pass("broker", connected);
  }
  const expired =
    certificate && certificate.daysLeft <= 0
      ? `; the client certificate expired on ${certificate.validTo}`
      : "";
  return fail("broker", `${target.url}${as}: ${outcome.problem}${expired}`, outcome.action(from));
}

/** The client certificate's end and the days left to it; null without one (or one that does not parse). */
function certificateDays(target: BrokerTarget): { validTo: string; daysLeft: number } | null {
  if (target.cert === undefined) return null;
  try {
    const validTo = new X509Certificate(target.cert).validTo;
    return { validTo, daysLeft: (Date.parse(validTo) - Date.now()) / 86_400_000 };
  } catch {
    return null;
  }
}

type Outcome =
  { kind: "connected"; ms: number } | { kind: "failed"; problem: string; action: (from: string) => string };

function connectOnce(target: BrokerTarget, timeoutMs: number): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const client = mqtt.connect(target.url, {
      protocolVersion: 4,
      clean: true,
      clientId: `greenwave-doctor-${randomBytes(4).toString("hex")}`,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs + 1000,
      ...(target.username !== undefined ? { username: target.username } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      ...(target.ca !== undefined ? { ca: target.ca } : {}),
      ...(target.cert !== undefined ? { cert: target.cert } : {}),
      ...(target.key !== undefined ? { key: target.key } : {}),
    });
    // The stream is there at once; its "connect" (TCP) or "secureConnect" (TLS) says the broker's port
    // took the connection, which tells "no route, dropped" from "not an MQTT broker" on a timeout.
    let reached = false;
    const stream = client.stream as unknown as NodeJS.EventEmitter | undefined;
    stream?.once("connect", () => (reached = true));
    stream?.once("secureConnect", () => (reached = true));
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end(true);
      resolve(outcome);
    };
    const timer = setTimeout(
      () =>
        finish(
          reached
            ? failed(
                `connected, but no MQTT answer within ${timeoutMs / 1000} s`,
                () =>
                  "is this an MQTT broker's port? (an mqtts:// broker answers nothing to mqtt://; check the scheme and port)",
              )
            : failed(
                `no connection within ${timeoutMs / 1000} s`,
                (from) =>
                  `check the network path to the broker (a firewall that drops packets?) and its address in ${from}`,
              ),
        ),
      timeoutMs,
    );
    client.on("connect", () => finish({ kind: "connected", ms: Math.round(performance.now() - started) }));
    client.on("error", (error) => finish(classify(error, target)));
    client.on("close", () => {
      // A close before CONNACK without an error: the broker hung up (a TLS client on a plain port…).
      if (!settled)
        setTimeout(
          () =>
            finish(failed("the broker closed the connection before answering", () => hungUpAction(target))),
          50,
        );
    });
  });
}

function failed(problem: string, action: (from: string) => string): Outcome {
  return { kind: "failed", problem, action };
}

function classify(error: Error & { code?: unknown }, target: BrokerTarget): Outcome {
  const code = error.code;
  const user = target.username ?? "(none)";
  if (typeof code === "number") {
    if (BAD_CREDENTIALS.has(code))
      return failed(
        `the broker refuses the user name or password (CONNACK ${code})`,
        (from) =>
          `check the user (${user}: --username in GREENWAVE_ARGS, ${from}) and the password in the password file; the broker's users file needs the hash of the same password (greenwave broker hash-password)`,
      );
    if (NOT_AUTHORISED.has(code))
      return failed(`the broker does not let user ${user} connect (CONNACK ${code}, not authorised)`, () =>
        target.cert !== undefined
          ? `the broker logs a client certificate in as its CN (${user}): that user must be in its users file (or ACL); docs/mtls.md`
          : `give ${user} the right to connect on the broker (its users and ACL)`,
      );
    if (IDENTIFIER_REJECTED.has(code))
      return failed(
        `the broker rejects the client id (CONNACK ${code})`,
        () => "check the broker's client id rules",
      );
    if (SERVER_UNAVAILABLE.has(code))
      return failed(`the broker is unavailable (CONNACK ${code})`, () => "check the broker's own log");
    return failed(
      `the broker refuses the connection (CONNACK ${code}: ${error.message})`,
      () => "check the broker's log",
    );
  }
  const address = target.url.replace(/^mqtts?:\/\//, "");
  switch (code) {
    case "ECONNREFUSED":
      return failed(
        `nothing listens at ${address} (connection refused)`,
        (from) => `check the broker's address in ${from} (GREENWAVE_BROKER_URL) and that the broker runs`,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return failed(
        `the host name does not resolve (${code})`,
        (from) => `check the broker's host name in ${from} and this machine's DNS`,
      );
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ETIMEDOUT":
      return failed(
        `the broker's host cannot be reached (${code})`,
        () => "check the network cable, the route and the address",
      );
    case "ECONNRESET":
    case "EPIPE":
      return failed(`the broker reset the connection (${code})`, () => hungUpAction(target));
  }
  if (isTlsError(error))
    return failed(
      `TLS failed: ${error.message}${typeof code === "string" ? ` (${code})` : ""}`,
      () =>
        "with a private CA give its certificate with --ca-file (in GREENWAVE_ARGS); check that the broker's certificate names this host and has not expired, and that the port speaks TLS",
    );
  return failed(`cannot connect: ${error.message}`, (from) => `check the broker settings in ${from}`);
}

/** What to do about a broker that hung up without an answer: a wrong scheme or port, or (mTLS) a certificate. */
function hungUpAction(target: BrokerTarget): string {
  return target.url.startsWith("mqtts://")
    ? "check the scheme (mqtt:// or mqtts://) and the port; a broker that takes client certificates closes a connection whose certificate it does not accept (none, expired, another CA): its log says why (--cert-file, --key-file; docs/mtls.md)"
    : "check the scheme (mqtt:// or mqtts://) and the port";
}

function isTlsError(error: Error & { code?: unknown }): boolean {
  const code = typeof error.code === "string" ? error.code : "";
  return (
    /^ERR_TLS|^ERR_SSL|CERT|SELF_SIGNED|UNABLE_TO_|^EPROTO$/.test(code) ||
    /certificate|ssl|tls|wrong version number/i.test(error.message)
  );
}
