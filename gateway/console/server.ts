import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt, { type MqttClient } from "mqtt";
import { ConsoleState, DEFAULT_LIMITS } from "./console-state.js";
import type { CorridorModel } from "./corridor-model.js";
import { PAGE_CSS, pageHtml } from "./page.js";
import type { ConsoleSnapshot } from "./view.js";

/**
 * The web console's server (docs/console.md): a read-only MQTT subscriber to the corridor's status,
 * availability, events and hires topics, and an HTTP server for the page, its script, the charting
 * library (from node_modules: no CDN), `/api/state` and the live stream `/api/stream` (server-sent
 * events). The browser never holds broker credentials; the topic ACL stays on the server's user.
 */

export interface ConsoleBroker {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string | Buffer;
  /** A client certificate and its key (PEM), for a broker that takes them (docs/mtls.md). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export interface ConsoleOptions {
  readonly model: CorridorModel;
  readonly broker: ConsoleBroker;
  readonly host: string;
  readonly port: number;
  /** Warnings (the broker unreachable, a stream client dropped); default: none. */
  readonly warn?: (message: string) => void;
}

export interface RunningConsole {
  /** http://host:port/ */
  readonly url: string;
  readonly state: ConsoleState;
  close(): Promise<void>;
}

/** Live-stream clients at once: more get 503 (counted). A tablet or two per control room, a wall display. */
export const MAX_STREAM_CLIENTS = 32;
/** A client whose unsent data passes this is too slow: it is dropped (counted) and reconnects afresh. */
export const MAX_CLIENT_BUFFER_BYTES = 1024 * 1024;
/** How often the time-space diagram is sent (it moves with the clock). */
const DIAGRAM_INTERVAL_MS = 1000;
/** A comment line now and then keeps proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

/** The page's script, compiled by tsc beside this file (dist/gateway/console/public/console.js). */
const SCRIPT_FILE = fileURLToPath(new URL("./public/console.js", import.meta.url));

/** Chart.js's self-contained browser build, from the installed package (resolved through its main entry). */
function chartFile(): string {
  const main = createRequire(import.meta.url).resolve("chart.js");
  return join(dirname(main), "chart.umd.min.js");
}

function readAsset(file: string, what: string): Buffer | string {
  try {
    return readFileSync(file);
  } catch (error) {
    return `/* ${what} is missing (${(error as Error).message}): run npm run build */`;
  }
}

export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const { model } = options;
  const warn = options.warn ?? (() => {});
  const state = new ConsoleState(model, DEFAULT_LIMITS);
  const clients = new Set<ServerResponse>();
  const assets = {
    script: readAsset(SCRIPT_FILE, "the console's script"),
    chart: readAsset(chartFile(), "chart.js"),
  };

  const mqttClient: MqttClient = mqtt.connect(options.broker.url, {
    protocolVersion: 4,
    clientId: `greenwave-console-${randomUUID().slice(0, 8)}`,
    clean: true,
    reconnectPeriod: 2000,
    connectTimeout: 5000,
    ...(options.broker.username !== undefined ? { username: options.broker.username } : {}),
    ...(options.broker.password !== undefined ? { password: options.broker.password } : {}),
    ...(options.broker.ca !== undefined ? { ca: options.broker.ca } : {}),
    ...(options.broker.cert !== undefined ? { cert: options.broker.cert } : {}),
    ...(options.broker.key !== undefined ? { key: options.broker.key } : {}),
  });
  let warnedOffline = false;
  mqttClient.on("connect", () => {
    warnedOffline = false;
    mqttClient.subscribe(state.topicFilters(), (error, granted) => {
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (error || refused.length > 0)
        warn(
          `the broker refused the console's subscription${refused.length ? ` to ${refused.join(", ")}` : ""}${error ? `: ${error.message}` : ""} (may this user read greenwave/v1/${model.id}/…?)`,
        );
    });
    broadcast("connection", { connected: true });
  });
  const offline = (why: string) => {
    if (!warnedOffline) warn(`the console is not connected to the broker at ${options.broker.url}: ${why}`);
    warnedOffline = true;
    broadcast("connection", { connected: false });
  };
  mqttClient.on("error", (error) => offline(error.message));
  mqttClient.on("offline", () => offline("offline"));
  mqttClient.on("message", (topic, payload) => {
    const changed = state.ingest(topic, payload, Date.now());
    if (changed !== null) broadcast("intersection", state.view(changed));
  });

  const snapshot = (): ConsoleSnapshot => {
    const nowMs = Date.now();
    return {
      corridor: { id: model.id, name: model.name },
      broker: options.broker.url,
      connected: mqttClient.connected,
      readOnly: true,
      intersections: state.views(),
      diagram: state.diagram(nowMs),
      counters: { ...state.counters, streamClients: clients.size },
      serverNowMs: nowMs,
    };
  };

  function broadcast(event: string, data: unknown): void {
    if (clients.size === 0) return;
    const chunk = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of clients) send(res, chunk);
  }

  function send(res: ServerResponse, chunk: string): void {
    if (res.writableLength > MAX_CLIENT_BUFFER_BYTES) {
      state.counters.streamSlowDropped++;
      clients.delete(res);
      res.destroy();
      warn(`a console client read too slowly (over ${MAX_CLIENT_BUFFER_BYTES} bytes unsent): dropped`);
      return;
    }
    res.write(chunk);
  }

  const diagramTimer = setInterval(() => {
    if (clients.size === 0) return;
    broadcast("diagram", state.diagram(Date.now()));
    broadcast("counters", { ...state.counters, streamClients: clients.size });
  }, DIAGRAM_INTERVAL_MS);
  const heartbeat = setInterval(() => {
    for (const res of clients) send(res, ": ping\n\n");
  }, HEARTBEAT_MS);

  const stream = (req: IncomingMessage, res: ServerResponse) => {
    if (clients.size >= MAX_STREAM_CLIENTS) {
      state.counters.streamRefused++;
      res.writeHead(503, {
        "content-type": "text/plain; charset=utf-8",
        "retry-after": "10",
        ...SECURITY_HEADERS,
      });
      res.end(`the console serves at most ${MAX_STREAM_CLIENTS} live clients at once\n`);
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      ...SECURITY_HEADERS,
    });
    res.socket?.setNoDelay(true);
    clients.add(res);
    send(res, `retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(snapshot())}\n\n`);
    const gone = () => clients.delete(res);
    req.on("close", gone);
    res.on("error", gone);
  };

  const server: Server = createServer((req, res) => {
    let path: string;
    try {
      path = new URL(req.url ?? "/", "http://console").pathname;
    } catch {
      // Not a URL (`GET http://[`): thrown here, it would be an uncaught exception that ends the
      // process — the demo's broker and gateways with it.
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
      res.end("the request target is not a URL\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, {
        allow: "GET, HEAD",
        "content-type": "text/plain; charset=utf-8",
        ...SECURITY_HEADERS,
      });
      res.end("the console is read-only: GET only\n");
      return;
    }
    const reply = (type: string, body: string | Buffer, cache = "no-cache") => {
      res.writeHead(200, { "content-type": type, "cache-control": cache, ...SECURITY_HEADERS });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    switch (path) {
      case "/":
      case "/index.html":
        return reply("text/html; charset=utf-8", pageHtml(model.name));
      case "/console.css":
        return reply("text/css; charset=utf-8", PAGE_CSS);
      case "/console.js":
        return reply("text/javascript; charset=utf-8", assets.script);
      case "/vendor/chart.umd.min.js":
        return reply("text/javascript; charset=utf-8", assets.chart, "public, max-age=86400");
      case "/api/state":
        return reply("application/json", JSON.stringify(snapshot()), "no-store");
      case "/api/stream":
        return stream(req, res);
      case "/favicon.ico":
        res.writeHead(204, SECURITY_HEADERS);
        res.end();
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
        res.end("not found: the console serves /, /api/state and /api/stream\n");
    }
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
    clearInterval(diagramTimer);
    clearInterval(heartbeat);
    mqttClient.end(true);
    throw error;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    state,
    close: async () => {
      clearInterval(diagramTimer);
      clearInterval(heartbeat);
      for (const res of clients) res.end();
      clients.clear();
      await new Promise<void>((resolve) => mqttClient.end(false, {}, () => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
