import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { Aedes, type AedesOptions, type AuthenticateError, type Client } from "aedes";
import { MAX_BROKER_PAYLOAD_BYTES, mayPublish, mayRetain, maySubscribe, type Principal } from "./acl.js";
import { guardChunk, PACKET_GUARD_START } from "./packet-size-guard.js";
import { LoginGuard, type LoginCounters } from "./login-guard.js";
import { DropReport } from "./drop-report.js";
import {
  DEFAULT_PUBLISH_LIMITS,
  type PublisherCounts,
  type PublishLimits,
  PublishPacer,
  topicClass,
} from "./publish-limit.js";
import type { BrokerUser } from "./users.js";
import {
  type CertificateRefusal,
  certificateLogin,
  type ClientCertificate,
  clientCertificateOf,
  tlsRefusal,
} from "./client-certificates.js";

export interface BrokerOptions {
  readonly host: string;
  readonly port: number;
  /** Users and their roles; null: an open broker (every client may do everything), for loopback demos. */
  readonly users: ReadonlyMap<string, BrokerUser> | null;
  readonly tls?: {
    readonly cert: string | Buffer;
    readonly key: string | Buffer;
    /**
     * The CA that issues client certificates (mTLS, docs/mtls.md): the broker asks every client for
     * one, closes a connection whose certificate this CA did not issue (or that has expired), and logs
     * a verified one in as the user named by its CN. Without it, no certificate is asked for.
     */
    readonly clientCa?: string | Buffer;
    /** With `clientCa`: a connection without a certificate is closed too (no password logins). */
    readonly requireClientCert?: boolean;
  };
  /** Nagle's algorithm off on every connection (the default): see docs/protocol.md. */
  readonly noDelay?: boolean;
  /** Runs on the broker before it accepts connections (an in-process subscriber that must miss nothing). */
  readonly beforeListen?: (aedes: Aedes) => void | Promise<void>;
  /** PUBLISHes per login (per client id when open): see publish-limit.ts. Null: no limit (tests only). */
  readonly publishLimits?: PublishLimits | null;
  readonly onLog?: (level: "info" | "warn", message: string, detail?: Record<string, unknown>) => void;
}

export interface BrokerCounters {
  connections: number;
  authFailures: number;
  publishDenied: number;
  subscribeDenied: number;
  tooLarge: number;
  /** Publishes held for their turn by the publish limit (then routed). */
  publishDelayed: number;
  /** Publishes dropped by the publish limit, never routed (by login and class: `RunningBroker.publishers`). */
  publishDropped: number;
  /**
   * Subscribers disconnected because their socket did not drain for aedes's `drainTimeout` (60 s):
   * what was queued for them (QoS 1 included: clean sessions) is lost with the connection.
   */
  slowSubscribers: number;
  /** TLS connections closed right after the handshake for their client certificate, by why. */
  certificatesRefused: Record<CertificateRefusal, number>;
  /** Logins refused with a verified certificate (its CN no user, another username): also in authFailures. */
  certificateLoginsRefused: number;
}

export interface RunningBroker {
  readonly port: number;
  readonly url: string;
  readonly counters: BrokerCounters;
  /** Logins refused before any password check (rate limit, full queue) or skipped (client gone). */
  readonly logins: LoginCounters;
  /** Publishes passed, held and dropped, per login (per client id when open). */
  readonly publishers: ReadonlyMap<string, Readonly<PublisherCounts>>;
  readonly aedes: Aedes;
  close(): Promise<void>;
}

/** Most clients at once: past it a connection is refused (counted), not queued. */
export const MAX_BROKER_CONNECTIONS = 2000;

/** The largest packet: a payload at its limit, with its topic (at most 64 KiB) and headers. */
export const MAX_BROKER_PACKET_BYTES = MAX_BROKER_PAYLOAD_BYTES + 65_536 + 16;

const principals = new WeakMap<Client, Principal>();
/** The client certificate of each TLS connection (by socket) to a broker with a client CA. */
const certificates = new WeakMap<object, ClientCertificate>();

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

type BrokerLog = NonNullable<BrokerOptions["onLog"]>;

/**
 * The embedded MQTT 3.1.1 broker (aedes), with password authentication and the topic ACL of
 * docs/protocol.md. Retained messages and QoS 1 queues live in memory: a restart loses them, and the
 * gateways republish what they own on reconnect.
 */
export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  const counters: BrokerCounters = {
    connections: 0,
    authFailures: 0,
    publishDenied: 0,
    subscribeDenied: 0,
    tooLarge: 0,
    publishDelayed: 0,
    publishDropped: 0,
    slowSubscribers: 0,
    certificatesRefused: {
      "no-certificate": 0,
      "unknown-issuer": 0,
      expired: 0,
      "not-yet-valid": 0,
      "not-for-clients": 0,
      invalid: 0,
    },
    certificateLoginsRefused: 0,
  };
  const log = options.onLog ?? (() => {});
  const guard = new LoginGuard();
  const limits = options.publishLimits === undefined ? DEFAULT_PUBLISH_LIMITS : options.publishLimits;
  const limiter = limits ? publishLimiter(new PublishPacer(limits), counters, log) : null;
  const aedes = await Aedes.createBroker({
    authenticate: authenticator(options.users, counters, log, guard),
    authorizePublish: publishAuthorizer(counters, log, limiter),
    authorizeSubscribe(client, subscription, callback) {
      if (!maySubscribe(principalOf(client), subscription.topic)) {
        counters.subscribeDenied++;
        log("warn", "subscribe refused by the ACL", { clientId: client.id, topic: subscription.topic });
        // A null subscription is a SUBACK failure (0x80) for that filter, the connection stays up.
        callback(null, null);
        return;
      }
      callback(null, subscription);
    },
  });
  if (limiter) limiter.install(aedes);
  aedes.on("clientError", (client, error) => {
    if (error.message !== "drain timeout") return;
    counters.slowSubscribers++;
    log("warn", "subscriber disconnected: it read nothing for 60 s; what was queued for it is lost", {
      clientId: client.id,
      login: loginOf(client),
      hint: "a client that subscribes must read its messages: check its host (CPU, network) and its subscriptions",
    });
  });
  const running = await listen(aedes, options, counters);
  return {
    ...running,
    logins: guard.counters,
    publishers: limiter?.pacer.counts ?? new Map(),
    close: async () => {
      limiter?.close();
      await running.close();
    },
  };
}

/** Whose budget a publish uses: the login, or the client id on an open broker. */
function loginOf(client: Client): string {
  const principal = principalOf(client);
  return principal.role === "open" ? `client:${client.id}` : principal.username;
}

interface PublishLimiter {
  readonly pacer: PublishPacer;
  /** Calls `pass` now or after the login's turn, or marks the packet to be dropped and calls `pass`. */
  admit(client: Client, packet: { topic: string }, pass: () => void): void;
  /** Makes marked packets go nowhere: aedes routes a client's PUBLISH through `broker.publish`. */
  install(aedes: Aedes): void;
  close(): void;
}

/**
 * The publish limit in aedes's terms. A held publish delays `authorizePublish`'s answer: aedes reads
 * the next bytes of a connection only when every packet of the last read is done, so the sender is
 * held back by TCP and nothing piles up in the broker. A dropped one is authorised (refusing it would
 * close the connection) but marked, and aedes's `publish`, which a client's PUBLISH goes through with
 * the same packet object once acknowledged, ends it there: not retained, not routed.
 */
function publishLimiter(pacer: PublishPacer, counters: BrokerCounters, log: BrokerLog): PublishLimiter {
  const marked = new WeakSet<object>();
  const timers = new Set<NodeJS.Timeout>();
  const report = new DropReport((dropped, otherLogins) =>
    log("warn", "publishes dropped by the broker's publish limit (never routed, never retained)", {
      dropped,
      ...(otherLogins > 0 ? { otherLogins } : {}),
      limit: pacer.limits,
      hint: "a login that publishes faster than the limit for longer than its burst: stop or fix that client (its credential may be stolen: see the threat model in docs/protocol.md), or raise --publish-rate/--publish-burst if its traffic is legitimate",
    }),
  );
  return {
    pacer,
    admit(client, packet, pass) {
      const login = loginOf(client);
      const verdict = pacer.take(login, packet.topic);
      if (verdict.kind === "pass") return pass();
      if (verdict.kind === "wait") {
        counters.publishDelayed++;
        const timer = setTimeout(() => {
          timers.delete(timer);
          pass();
        }, verdict.waitMs);
        timers.add(timer);
        return;
      }
      counters.publishDropped++;
      marked.add(packet);
      report.count(login, client.id, topicClass(packet.topic));
      pass();
    },
    install(aedes) {
      const publish = aedes.publish.bind(aedes) as unknown as (
        packet: object,
        client: Client | null,
        done: (error?: Error) => void,
      ) => void;
      (aedes as unknown as { publish: typeof publish }).publish = (packet, client, done) => {
        if (!marked.has(packet)) return publish(packet, client, done);
        marked.delete(packet);
        done();
      };
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      report.flush();
    },
  };
}

function principalOf(client: Client | null): Principal {
  return client === null ? { role: "open" } : (principals.get(client) ?? { role: "open" });
}

/** Users by name and scrypt hash; without users (the loopback demo) everyone is an open principal. */
function authenticator(
  users: ReadonlyMap<string, BrokerUser> | null,
  counters: BrokerCounters,
  log: BrokerLog,
  guard: LoginGuard,
): AedesOptions["authenticate"] {
  return (client, username, password, done) => {
    if (users === null) {
      principals.set(client, { role: "open" });
      done(null, true);
      return;
    }
    const address = client.conn && "remoteAddress" in client.conn ? String(client.conn.remoteAddress) : "?";
    const certificate = certificates.get(client.conn);
    if (certificate?.kind === "verified") {
      const login = certificateLogin(certificate.name, users, username);
      if (login.ok) {
        principals.set(client, login.principal);
        done(null, true);
        return;
      }
      counters.authFailures++;
      counters.certificateLoginsRefused++;
      log("warn", `connection refused: ${login.reason}`, {
        clientId: client.id,
        address,
        ...certificate.details,
        hint: login.hint,
      });
      // 5: not authorised (MQTT 3.1.1): the certificate verified, but names no one the broker knows.
      done(authError(login.reason, 5), false);
      return;
    }
    const user = username === undefined ? undefined : users.get(username);
    const gone = () => Boolean((client.conn as { destroyed?: boolean } | undefined)?.destroyed);
    guard.check(address, username, user?.passwordHash ?? null, password, gone).then((verdict) => {
      if (verdict === "accepted" && user) {
        principals.set(client, user.principal);
        done(null, true);
        return;
      }
      counters.authFailures++;
      if (verdict === "rate-limited" || verdict === "busy") {
        log(
          "warn",
          `connection refused: ${verdict === "busy" ? "too many logins waiting" : "too many login attempts from this address or for this user"}`,
          {
            clientId: client.id,
            address,
          },
        );
        // 3: server unavailable (MQTT 3.1.1): the client retries later, as it should.
        done(authError("too many login attempts; try again later", 3), false);
        return;
      }
      if (verdict === "refused")
        log("warn", "connection refused: bad username or password", { clientId: client.id, username });
      done(authError("bad username or password", 4), false);
    });
  };
}

/**
 * Size, retain, the ACL and the publish limit, in that order; a refusal closes the client's
 * connection (MQTT 3.1.1); the limit holds or drops, never refuses.
 */
function publishAuthorizer(
  counters: BrokerCounters,
  log: BrokerLog,
  limiter: PublishLimiter | null,
): AedesOptions["authorizePublish"] {
  return (client, packet, callback) => {
    const bytes = packet.payload ? Buffer.byteLength(packet.payload as Buffer) : 0;
    if (bytes > MAX_BROKER_PAYLOAD_BYTES) {
      counters.tooLarge++;
      log("warn", "publish refused: payload too large", { clientId: client?.id, topic: packet.topic });
      callback(new Error(`payload larger than ${MAX_BROKER_PAYLOAD_BYTES} bytes`));
      return;
    }
    // Even in open mode: a retained command would be replayed at every subscription.
    // (An empty retained payload deletes a retained message: that stays allowed, to clean up.)
    if (client !== null && packet.retain && bytes > 0 && !mayRetain(packet.topic)) {
      counters.publishDenied++;
      log("warn", "publish refused: commands and inbox messages are never retained", {
        clientId: client.id,
        topic: packet.topic,
      });
      callback(new Error(`${packet.topic} may not be retained`));
      return;
    }
    // The broker's own publications (last wills are re-checked here too) and open mode pass.
    const principal = principalOf(client);
    if (client !== null && !mayPublish(principal, packet.topic)) {
      counters.publishDenied++;
      log("warn", "publish refused by the ACL", {
        clientId: client.id,
        topic: packet.topic,
        role: principal.role,
      });
      callback(new Error(`not authorised to publish to ${packet.topic}`));
      return;
    }
    // The rate limit last: a refusal above closes the connection anyway. A client's last will
    // (published when it goes) is not limited: it is one message, and says the client is gone.
    if (client === null || limiter === null || packet === (client as { will?: unknown }).will)
      return callback(null);
    limiter.admit(client, packet, () => callback(null));
  };
}

/**
 * Closes a connection whose next packet declares more than a payload's limit (plus room for its
 * topic and header) as soon as its fixed header arrives. Listening to `data` beside aedes's own
 * `readable` reads changes nothing of how aedes reads: the chunks are seen as it reads them.
 */
function guardPacketSizes(socket: Socket, counters: BrokerCounters, log: BrokerLog): void {
  let state = PACKET_GUARD_START;
  const onData = (chunk: Buffer) => {
    const step = guardChunk(state, chunk, MAX_BROKER_PACKET_BYTES);
    if (step.ok) {
      state = step.state;
      return;
    }
    socket.off("data", onData);
    counters.tooLarge++;
    log("warn", "connection closed: a packet larger than the broker accepts", {
      remoteAddress: socket.remoteAddress,
      declaredBytes: step.declared,
      limitBytes: MAX_BROKER_PACKET_BYTES,
    });
    socket.destroy();
  };
  socket.on("data", onData);
}

/** Accepts connections (TCP or TLS) for the broker, bounded in number; closes everything on close(). */
async function listen(
  aedes: Aedes,
  options: BrokerOptions,
  counters: BrokerCounters,
): Promise<Omit<RunningBroker, "logins" | "publishers">> {
  await options.beforeListen?.(aedes);
  const log = options.onLog ?? (() => {});
  const clientCa = options.tls?.clientCa;
  const onConnection = (socket: Socket) => {
    if (clientCa !== undefined && !admitCertificate(socket as TLSSocket)) return;
    counters.connections++;
    socket.setNoDelay(options.noDelay ?? true);
    guardPacketSizes(socket, counters, log);
    aedes.handle(socket);
  };
  /** Records the connection's client certificate, or closes it: nothing of a refused one is read as MQTT. */
  const admitCertificate = (socket: TLSSocket): boolean => {
    const certificate = clientCertificateOf(socket);
    const refused = tlsRefusal(certificate, options.tls?.requireClientCert === true);
    if (refused === null) {
      certificates.set(socket, certificate);
      return true;
    }
    counters.certificatesRefused[refused.refusal]++;
    log("warn", refused.message, {
      address: socket.remoteAddress,
      ...(certificate.kind === "refused" ? { code: certificate.code, ...certificate.details } : {}),
      hint: refused.hint,
    });
    socket.destroy();
    return false;
  };
  // Verification is ours, not Node's (rejectUnauthorized: false): Node would close a refused
  // connection without a word, and a broker that still takes passwords must let one without a
  // certificate through. Node verifies the chain against `ca` alone, dates and purpose (clientAuth).
  const server: Server = options.tls
    ? createTlsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ...(clientCa !== undefined ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {}),
        },
        onConnection,
      )
    : createTcpServer(onConnection);
  server.maxConnections = MAX_BROKER_CONNECTIONS;
  const sockets = new Set<Socket>();
  server.on(options.tls ? "secureConnection" : "connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    // aedes keeps a heartbeat timer: a broker that could not listen must not keep the process alive.
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    port,
    url: `${options.tls ? "mqtts" : "mqtt"}://${host}:${port}`,
    counters,
    aedes,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await closed;
    },
  };
}
