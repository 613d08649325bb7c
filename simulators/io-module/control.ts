import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { z } from "zod";
import { inputChannels, type ModuleModel } from "./module-model.js";

/** Requests larger than this are refused (413): the control API takes small JSON bodies. */
const MAX_BODY_BYTES = 16_384;

const faultsSchema = z.strictObject({
  noAnswer: z.boolean().default(false),
  corruptCrc: z.boolean().default(false),
  slowMs: z.number().int().min(0).max(60_000).default(0),
  stuck: z.array(z.number().int().min(0).max(255)).max(256).default([]),
  dark: z.array(z.number().int().min(0).max(255)).max(256).default([]),
});

export type FaultRequest = z.input<typeof faultsSchema>;

/** What GET /state says of the arrival process, when one drives the inputs. */
export interface ArrivalsStatus {
  readonly counters: { readonly arrivals: number; readonly presses: number };
}

export function moduleState(model: ModuleModel, unitId: number, arrivals: ArrivalsStatus | null = null) {
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
    // The inputs set from outside (PUT /inputs, the arrival process, live traffic), by channel.
    detectorInputs: Object.fromEntries(
      [...model.detectorInputs].sort(([a], [b]) => a - b).map(([channel, on]) => [String(channel), on]),
    ),
    ...(arrivals ? { arrivals: { ...arrivals.counters } } : {}),
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

/** Keys that are never an input channel, named as such in the refusal. */
const PROTOTYPE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** A key or value as it came, cut short: a refusal does not echo a whole body. */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * A PUT /inputs body: an object of input channel ("16") → true (on), false (off) or null (released:
 * the channel reads its lamp's current again). All problems, or the changes to make; none is made
 * unless all are good.
 */
export function parseInputsRequest(
  body: unknown,
  inputs: number,
): { ok: true; set: Map<number, boolean | null> } | { ok: false; errors: string[] } {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return {
      ok: false,
      errors: ['the body must be a JSON object of input channel → true, false or null, e.g. {"16": true}'],
    };
  const errors: string[] = [];
  const set = new Map<number, boolean | null>();
  for (const [key, value] of Object.entries(body)) {
    if (PROTOTYPE_KEYS.has(key)) {
      errors.push(`${quote(key)}: refused, not an input channel`);
      continue;
    }
    if (!/^(0|[1-9]\d{0,5})$/.test(key)) {
      errors.push(`${quote(key)}: not an input channel (a whole number from 0, e.g. "16")`);
      continue;
    }
    const channel = Number(key);
    if (channel >= inputs) {
      errors.push(
        inputs === 0
          ? `input channel ${channel}: this module has no discrete inputs (its feedback is not read from inputs)`
          : `input channel ${channel}: outside this module's discrete inputs 0–${inputs - 1}`,
      );
      continue;
    }
    if (value !== true && value !== false && value !== null) {
      errors.push(`input channel ${channel}: ${quote(value)} is not true, false or null (release)`);
      continue;
    }
    set.set(channel, value);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, set };
}

/**
 * The simulator's control API on loopback: GET /state, GET /history, PUT /faults (JSON, replaces all
 * faults; {} clears them), PUT /inputs (JSON, channel → true/false/null: sets or releases detector
 * inputs, the others stay as they are).
 */
export function startControl(
  model: ModuleModel,
  unitId: number,
  host: string,
  port: number,
  arrivals: ArrivalsStatus | null = null,
): Promise<{ port: number; close(): Promise<void> }> {
  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(`${JSON.stringify(body)}\n`);
  };
  /** A bounded JSON body (413 over MAX_BODY_BYTES, 400 when not JSON), then `then` with it. */
  const withJsonBody = (req: IncomingMessage, res: ServerResponse, then: (body: unknown) => void) => {
    const tooLarge = () => {
      res.setHeader("connection", "close");
      reply(res, 413, { error: `body over ${MAX_BODY_BYTES} bytes` });
      // Read no more of it: the rest is drained, not kept, and the connection closes after the answer.
      req.removeAllListeners("data");
      req.resume();
    };
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge();
      else chunks.push(chunk);
    });
    req.on("end", () => {
      if (res.headersSent) return;
      const text = Buffer.concat(chunks).toString("utf8");
      let parsed: unknown;
      try {
        parsed = JSON.parse(text || "{}");
      } catch {
        return reply(res, 400, { error: "body is not JSON" });
      }
      then(parsed);
    });
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://control");
    if (req.method === "GET" && url.pathname === "/state")
      return reply(res, 200, moduleState(model, unitId, arrivals));
    if (req.method === "GET" && url.pathname === "/history") {
      return reply(res, 200, { entries: model.history, dropped: model.historyDropped });
    }
    if (req.method === "PUT" && url.pathname === "/faults") {
      return withJsonBody(req, res, (parsed) => {
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
        return reply(res, 200, moduleState(model, unitId, arrivals));
      });
    }
    if (req.method === "PUT" && url.pathname === "/inputs") {
      return withJsonBody(req, res, (parsed) => {
        const result = parseInputsRequest(parsed, inputChannels(model.profile));
        if (!result.ok) return reply(res, 400, { error: result.errors });
        for (const [channel, on] of result.set) {
          if (on === null) model.releaseDetectorInput(channel);
          else model.setDetectorInput(channel, on);
        }
        return reply(res, 200, moduleState(model, unitId, arrivals));
      });
    }
    reply(res, 404, { error: "try GET /state, GET /history, PUT /faults or PUT /inputs" });
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
