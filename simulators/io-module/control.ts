import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { z } from "zod";
import type { ModuleModel } from "./module-model.js";

/** Fault injection requests larger than this are refused: the control API takes small JSON bodies. */
const MAX_BODY_BYTES = 16_384;

const faultsSchema = z.strictObject({
  noAnswer: z.boolean().default(false),
  corruptCrc: z.boolean().default(false),
  slowMs: z.number().int().min(0).max(60_000).default(0),
  stuck: z.array(z.number().int().min(0).max(255)).max(256).default([]),
  dark: z.array(z.number().int().min(0).max(255)).max(256).default([]),
});

export type FaultRequest = z.input<typeof faultsSchema>;

export function moduleState(model: ModuleModel, unitId: number) {
  const fb = model.profile.feedback;
  return {
    profile: model.profile.id,
    unitId,
    coils: model.coils.map((c) => (c ? 1 : 0)).join(""),
    inputs:
      fb.source === "discrete-inputs"
        ? model
            .readInputs(fb.firstInput, fb.count)
            .map((c) => (c ? 1 : 0))
            .join("")
        : null,
    watchdog: {
      timeoutMs: model.watchdogTimeoutMs,
      inSafeState: model.inSafeState,
      trips: model.watchdogTrips,
    },
    faults: { ...model.faults, stuck: [...model.faults.stuck], dark: [...model.faults.dark] },
    historyLength: model.history.length,
    historyDropped: model.historyDropped,
  };
}

/**
 * The simulator's control API on loopback: GET /state, GET /history, PUT /faults (JSON, replaces all
 * faults; {} clears them).
 */
export function startControl(
  model: ModuleModel,
  unitId: number,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(`${JSON.stringify(body)}\n`);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://control");
    if (req.method === "GET" && url.pathname === "/state") return reply(res, 200, moduleState(model, unitId));
    if (req.method === "GET" && url.pathname === "/history") {
      return reply(res, 200, { entries: model.history, dropped: model.historyDropped });
    }
    if (req.method === "PUT" && url.pathname === "/faults") {
      let body = "";
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reply(res, 413, { error: `body over ${MAX_BODY_BYTES} bytes` });
          req.destroy();
        } else body += chunk.toString();
      });
      req.on("end", () => {
        if (res.headersSent) return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(body || "{}");
        } catch {
          return reply(res, 400, { error: "body is not JSON" });
        }
        const result = faultsSchema.safeParse(parsed);
        if (!result.success) {
          return reply(res, 400, {
            error: result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`),
          });
        }
        const f = result.data;
        Object.assign(model.faults, {
          noAnswer: f.noAnswer,
          corruptCrc: f.corruptCrc,
          slowMs: f.slowMs,
          stuck: new Set(f.stuck),
          dark: new Set(f.dark),
        });
        return reply(res, 200, moduleState(model, unitId));
      });
      return;
    }
    reply(res, 404, { error: "try GET /state, GET /history or PUT /faults" });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        port: typeof address === "object" && address ? address.port : port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
