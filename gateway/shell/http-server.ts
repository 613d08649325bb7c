import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthReport {
  /** False when the gateway is not doing its job (its tick loop stalled). */
  readonly healthy: boolean;
  readonly [detail: string]: unknown;
}

export interface HttpEndpoint {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export interface ReadinessReport {
  /** False unless the intersection serves traffic as intended: no latched fault, started, not stopping. */
  readonly ready: boolean;
  readonly [detail: string]: unknown;
}

/** What an extra GET route answers. */
export interface RouteAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** An extra GET route: its query string in, a whole answer out (never throws for bad input: a 400). */
export type Route = (query: URLSearchParams) => RouteAnswer;

/**
 * `/healthz` (is the process alive and doing its job: 200 or 503, JSON), `/readyz` (is the
 * intersection in service: 503 in a latched fault, during start-up and while stopping) and `/metrics`
 * (Prometheus text) on one small HTTP server.
 */
export async function startHttpEndpoint(
  host: string,
  port: number,
  registry: Registry,
  health: () => HealthReport,
  readiness: () => ReadinessReport = () => ({ ready: health().healthy }),
  routes: Readonly<Record<string, Route>> = {},
): Promise<HttpEndpoint> {
  const server: Server = createServer((request, response) => {
    const [path = "/", search = ""] = (request.url ?? "/").split("?", 2);
    if (request.method !== "GET") {
      response.writeHead(405, { allow: "GET" }).end();
      return;
    }
    if (path === "/healthz") {
      const report = health();
      response
        .writeHead(report.healthy ? 200 : 503, { "content-type": "application/json" })
        .end(`${JSON.stringify(report)}\n`);
      return;
    }
    if (path === "/readyz") {
      const report = readiness();
      response
        .writeHead(report.ready ? 200 : 503, { "content-type": "application/json" })
        .end(`${JSON.stringify(report)}\n`);
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
        (error: Error) => response.writeHead(500).end(error.message),
      );
      return;
    }
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route) {
      let answer: RouteAnswer;
      try {
        answer = route(new URLSearchParams(search));
      } catch (error) {
        answer = { status: 500, contentType: "text/plain", body: `${(error as Error).message}\n` };
      }
      response
        .writeHead(answer.status, { "content-type": answer.contentType, ...answer.headers })
        .end(answer.body);
      return;
    }
    const known = ["/healthz", "/readyz", "/metrics", ...Object.keys(routes)];
    response
      .writeHead(404, { "content-type": "text/plain" })
      .end(`not found: try ${known.slice(0, -1).join(", ")} or ${known.at(-1)}\n`);
  });
  server.keepAliveTimeout = 5000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
