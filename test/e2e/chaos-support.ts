import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import mqtt, { type MqttClient } from "mqtt";
import type { TxnRow } from "../../gateway/store/store.js";
import { CLI } from "./cli.js";
import { captureOutput } from "./processes.js";

// --- processes that may be killed with SIGKILL and started again ---

export interface Spawned {
  readonly name: string;
  readonly args: readonly string[];
  readonly child: ChildProcess;
  readonly startedAt: number;
  out: string;
  lines: Record<string, unknown>[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export const alive = (p: Spawned) => p.child.exitCode === null && p.child.signalCode === null;

/**
 * Every process a test starts, as a user starts them (`node dist/gateway/cli/main.js …`), or a node
 * script; `stopAll` (afterEach) stops what is still running: SIGINT, then SIGKILL after a bound.
 */
export class Fleet {
  private readonly all: Spawned[] = [];

  start(name: string, args: readonly string[]): Spawned {
    return this.spawnNode(name, [CLI, ...args], args);
  }

  /** A node ES module script given as text (the coordinator's recovery). */
  script(name: string, code: string, args: readonly string[]): Spawned {
    return this.spawnNode(name, ["--input-type=module", "-e", code, "--", ...args], args);
  }

  private spawnNode(name: string, argv: readonly string[], args: readonly string[]): Spawned {
    const child = spawn("node", argv, { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once("exit", (code, signal) => done({ code, signal })),
    );
    const proc: Spawned = { name, args, child, startedAt: Date.now(), out: "", lines: [], exited };
    captureOutput(child, proc);
    this.all.push(proc);
    return proc;
  }

  kill9(proc: Spawned): void {
    if (alive(proc)) proc.child.kill("SIGKILL");
  }

  async stopAll(): Promise<void> {
    const running = this.all.splice(0).filter(alive);
    // A second SIGINT cuts a gateway's clean stop short: teardown need not wait for its clearances.
    for (const p of running) p.child.kill("SIGINT");
    await sleep(300);
    for (const p of running.filter(alive)) p.child.kill("SIGINT");
    await Promise.all(
      running.map(async (p) => {
        const timer = setTimeout(() => p.child.kill("SIGKILL"), 8000);
        await p.exited;
        clearTimeout(timer);
      }),
    );
  }
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Like `until`, for probes that must await (HTTP). */
export async function untilAsync<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null | undefined | false>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

// --- what the gateways' stores and the coordinator's log say ---

export interface EventRow {
  seq: number;
  at_wall_ms: number;
  type: string;
  actor: string | null;
  detail: Record<string, unknown>;
}

export interface StoreView {
  txns: TxnRow[];
  planInForce: { planId: string; version: number; sinceWallMs: number } | null;
  events: EventRow[];
  latch: { kind: string; message: string } | null;
}

/** One gateway's SQLite store, read-only, opened and closed for each look (the gateway may be writing). */
export function readGatewayStore(file: string): StoreView {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const txns = db.prepare("SELECT * FROM txns ORDER BY rowid").all() as TxnRow[];
    const pif = db.prepare("SELECT plan_id, version, since_wall_ms FROM plan_in_force WHERE id = 1").get() as
      { plan_id: string; version: number; since_wall_ms: number } | undefined;
    const events = (
      db.prepare("SELECT seq, at_wall_ms, type, actor, detail FROM events ORDER BY seq").all() as (Omit<
        EventRow,
        "detail"
      > & { detail: string })[]
    ).map((e) => ({ ...e, detail: JSON.parse(e.detail) as Record<string, unknown> }));
    const latch = db.prepare("SELECT kind, message FROM latch WHERE id = 1").get() as
      { kind: string; message: string } | undefined;
    return {
      txns,
      planInForce: pif ? { planId: pif.plan_id, version: pif.version, sinceWallMs: pif.since_wall_ms } : null,
      events,
      latch: latch ?? null,
    };
  } finally {
    db.close();
  }
}

export interface DecisionRow {
  txn_id: string;
  outcome: "committed" | "aborted";
  ended: number;
  plan_id: string;
  activation_wall_ms: number;
  participants: string;
}

/** The coordinator's decision log (`plan push --data-dir`), read-only; empty when it was never written. */
export function readCoordinatorLog(file: string): DecisionRow[] {
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const table = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'decisions'")
      .get();
    if (!table) return [];
    return db
      .prepare("SELECT txn_id, outcome, ended, plan_id, activation_wall_ms, participants FROM decisions")
      .all() as DecisionRow[];
  } finally {
    db.close();
  }
}

// --- the coordinator's recovery: a restarted coordinator finishes its log and answers inquiries ---

/**
 * `recoverLog` (what `plan push` runs first, docs/corridor-protocol.md) on its own: finishes every
 * committed transaction of the log and answers inquiries (presumed abort) for `answerForMs`.
 * Arguments: broker URL, coordinator name, corridor file, coordinator data dir, answerForMs.
 */
export const RECOVERY_SCRIPT = `
const [url, name, corridorFile, dataDir, answerFor] = process.argv.slice(-5);
const dist = ${JSON.stringify(resolve("dist"))};
const { recoverLog } = await import(dist + "/gateway/operator/plan-push.js");
const { CoordinatorStore } = await import(dist + "/gateway/store/coordinator-store.js");
const { loadCorridor } = await import(dist + "/gateway/config/load.js");
const store = CoordinatorStore.open(dataDir);
try {
  const result = await recoverLog({
    url, name, corridor: loadCorridor(corridorFile), store,
    ackTimeoutMs: 15000, answerForMs: Number(answerFor),
  });
  process.stdout.write(JSON.stringify({ event: "recovered", result }) + "\\n");
} finally {
  store.close();
}
`;

// --- the corridor protocol on the wire, watched to pick kill points ---

export interface WireMessage {
  readonly at: number;
  readonly from: string;
  readonly to: string;
  readonly type: string;
  /** The transaction the message is about, when its body names one. */
  readonly txnId: string | null;
  /** A decision's (or an acknowledgement's) outcome. */
  readonly outcome: string | null;
}

/**
 * Watches the coordinator's traffic in the corridor's inboxes (the broker is open: no users file): only
 * the inboxes to and from `coordinator`, so that a flood between gateways does not reach the observer.
 */
export async function watchProtocol(
  url: string,
  corridor: string,
  coordinator: string,
  onMessage: (m: WireMessage) => void,
): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    clientId: `chaos-observer-${process.pid}`,
    clean: true,
    reconnectPeriod: 300,
    connectTimeout: 2000,
  });
  client.on("error", () => {});
  client.on("message", (topic, payload) => {
    const levels = topic.split("/");
    const to = levels[3] ?? "";
    const from = levels[5] ?? "";
    if (to !== coordinator && from !== coordinator) return;
    try {
      const body = (
        JSON.parse(payload.toString()) as { body?: { type?: string; txnId?: unknown; outcome?: unknown } }
      ).body;
      onMessage({
        at: Date.now(),
        from,
        to,
        type: body?.type ?? "?",
        txnId: typeof body?.txnId === "string" ? body.txnId : null,
        outcome: typeof body?.outcome === "string" ? body.outcome : null,
      });
    } catch {
      // not ours to judge here
    }
  });
  await client.subscribeAsync(
    [`greenwave/v1/${corridor}/+/inbox/${coordinator}`, `greenwave/v1/${corridor}/${coordinator}/inbox/+`],
    { qos: 0 },
  );
  return client;
}

// --- a flood of corridor messages from one member, into other gateways' inboxes ---

export interface FloodPlan {
  readonly url: string;
  readonly corridor: string;
  /** The corridor member the flood comes from: the inbox topics' sender level, and each envelope's `from`. */
  readonly from: string;
  /** Whose inboxes it fills (round-robin). */
  readonly targets: readonly string[];
  readonly messages: number;
  readonly durationMs: number;
  /** The coordinator's transaction in progress as the wire shows it (null before its PREPARE). */
  readonly current: () => { txnId: string; outcome: string | null } | null;
  /** Names the unknown transactions it asks about: unique per flood. */
  readonly tag: string;
  /** Whom some envelopes claim to come from, against their topic (a forged sender: the coordinator, say). */
  readonly impersonate: string;
}

export interface FloodReport {
  readonly sent: number;
  /** Publishes the client reported failed, or not confirmed (QoS 1 acknowledged, QoS 0 written) 15 s after the last. */
  readonly errors: number;
  readonly unconfirmed: number;
  /** From the first publish to the last one handed to the client. */
  readonly ms: number;
  readonly kinds: Readonly<Record<string, number>>;
  /** Whether any inquiry or duplicate named the coordinator's transaction in progress. */
  readonly aboutCurrent: number;
}

/** A connected client for a flood (connected ahead, so that the flood starts at its point). */
export async function floodClient(url: string, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    clientId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  client.on("error", () => {});
  // mqtt.js waits for 'drain' once per publish while the socket is full: thousands at once, by design here.
  client.stream.setMaxListeners(0);
  return client;
}

/**
 * Message `i` of a flood from `from` to `to`: seven in ten valid-looking (inquiries about unknown
 * transactions and about the one in progress, duplicated votes and acknowledgements of it), three in
 * ten malformed (not JSON, invalid or foreign bodies, forged senders, prototype keys, wrong versions,
 * deep nesting, now and then one over the inbox's 128 KiB limit). Half QoS 0, half QoS 1.
 */
function floodMessage(
  i: number,
  from: string,
  to: string,
  plan: FloodPlan,
): { kind: string; payload: string | Buffer; qos: 0 | 1; current: boolean } {
  const qos = (i % 2) as 0 | 1;
  const cur = plan.current();
  const txnId = cur?.txnId ?? `${plan.tag}-none-${i}`;
  const envelope = (body: unknown, over: Record<string, unknown> = {}) =>
    JSON.stringify({ v: 1, from, to, sentAtWallMs: Date.now(), body, ...over });
  const slot = i % 20;
  if (slot < 6)
    return {
      kind: "inquiry-unknown",
      payload: envelope({ type: "inquiry", txnId: `${plan.tag}-${i}` }),
      qos,
      current: false,
    };
  if (slot < 10)
    return {
      kind: "inquiry-current",
      payload: envelope({ type: "inquiry", txnId }),
      qos,
      current: cur !== null,
    };
  if (slot < 12)
    return {
      kind: "vote-duplicate",
      payload: envelope({ type: "vote", txnId, yes: true, reason: null }),
      qos,
      current: cur !== null,
    };
  if (slot < 14)
    return {
      kind: "ack-duplicate",
      payload: envelope({
        type: "ack",
        txnId,
        outcome: cur?.outcome === "aborted" ? "aborted" : "committed",
      }),
      qos,
      current: cur !== null,
    };
  const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
  const malformed: (() => string | Buffer)[] = [
    () => Buffer.from(Array.from({ length: 16 + (i % 200) }, (_, k) => (i * 31 + k * 17) % 256)),
    () => "",
    () => "null",
    () => `{"v":1,"from":"${from}","to":"${to}","body":`,
    () => envelope({ type: "inquiry" }),
    () => envelope({ type: "inquiry", txnId }, { from: plan.impersonate }),
    () =>
      `{"v":1,"from":"${from}","to":"${to}","sentAtWallMs":1,"body":{"type":"constructor","__proto__":{"txnId":"p"}}}`,
    () => envelope({ type: "inquiry", txnId }, { v: 2 }),
    () => envelope({ type: "vote", txnId, yes: "maybe", reason: null }),
    () => envelope({ type: "inquiry", txnId }, { to: "valueOf" }),
    () => deep(5000),
    () => (i % 500 === 19 ? `"${"x".repeat(140_000)}"` : "[]"),
  ];
  const pick = Math.floor(i / 20) % malformed.length;
  return { kind: "malformed", payload: (malformed[pick] as () => string | Buffer)(), qos, current: false };
}

/**
 * Publishes `plan.messages` messages from `plan.from` into the targets' inboxes, spread evenly over
 * `plan.durationMs` (a slice every 20 ms, yielding in between), then waits (at most 15 s) for the
 * client to confirm them, and disconnects.
 */
export async function flood(client: MqttClient, plan: FloodPlan): Promise<FloodReport> {
  const started = performance.now();
  const kinds: Record<string, number> = {};
  let sent = 0;
  let confirmed = 0;
  let errors = 0;
  let aboutCurrent = 0;
  let allConfirmed: () => void = () => {};
  const whenConfirmed = new Promise<void>((resolve) => (allConfirmed = resolve));
  const one = (error?: Error) => {
    if (error) errors++;
    if (++confirmed === plan.messages) allConfirmed();
  };
  const slices = Math.max(1, Math.round(plan.durationMs / 20));
  for (let s = 1; s <= slices; s++) {
    const upTo = Math.round((plan.messages * s) / slices);
    for (; sent < upTo; sent++) {
      const to = plan.targets[sent % plan.targets.length] as string;
      const m = floodMessage(sent, plan.from, to, plan);
      kinds[m.kind] = (kinds[m.kind] ?? 0) + 1;
      if (m.current) aboutCurrent++;
      client.publish(
        `greenwave/v1/${plan.corridor}/${to}/inbox/${plan.from}`,
        m.payload,
        { qos: m.qos },
        one,
      );
    }
    await sleep(Math.max(0, started + (s * plan.durationMs) / slices - performance.now()));
  }
  const ms = performance.now() - started;
  await Promise.race([whenConfirmed, sleep(15_000)]);
  const unconfirmed = plan.messages - confirmed;
  await client.endAsync(true).catch(() => {});
  return { sent, errors, unconfirmed, ms, kinds, aboutCurrent };
}

// --- a gateway's metrics (Prometheus text) ---

/** The sum of a metric's samples whose labels include `labels`; NaN when the scrape failed. */
export async function metricSum(
  httpUrl: string | null,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  if (!httpUrl) return NaN;
  let text: string;
  try {
    text = await (await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  } catch {
    return NaN;
  }
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const has = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1] as string, x[2] as string]),
    );
    if (Object.entries(labels).every(([k, v]) => has[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

// --- the lamps, from a simulated module's history ---

export interface HistoryEntry {
  readonly t: number;
  readonly outputs: string;
  readonly cause: "write" | "watchdog" | "start";
}

export interface VehicleChannels {
  readonly red: number;
  readonly yellow: number;
  readonly green: number;
}
export interface PedestrianChannels {
  readonly dontWalk: number;
  readonly walk: number;
}

export interface LampLayout {
  readonly vehicles: Readonly<Record<string, VehicleChannels>>;
  readonly pedestrians: Readonly<Record<string, PedestrianChannels>>;
  /** Pairs of groups that may show green/yellow/walk together (symmetric). */
  readonly permissive: readonly (readonly [string, string])[];
  readonly yellowMs: number;
  readonly redClearanceMs: number;
  /** Minimum green of every vehicle group, walk and pedestrian clearance of every pedestrian group. */
  readonly minGreenMs: number;
  readonly walkMs: number;
  readonly pedestrianClearanceMs: number;
  /** Half a period of a flashing DON'T WALK: the end of a clearance can hide in a lit half. */
  readonly flashHalfMs: number;
}

/** The fixture's lamps (simulators/fixtures/corridor-fixture.ts: channels and permissive pairs). */
export const FIXTURE_LAYOUT: LampLayout = {
  vehicles: { M: { red: 0, yellow: 1, green: 2 }, S: { red: 3, yellow: 4, green: 5 } },
  pedestrians: { PS: { dontWalk: 6, walk: 7 }, PM: { dontWalk: 8, walk: 9 } },
  permissive: [
    ["M", "PS"],
    ["S", "PM"],
  ],
  yellowMs: 3000,
  redClearanceMs: 1000,
  minGreenMs: 5000,
  walkMs: 7000,
  pedestrianClearanceMs: 5000,
  // The fixture's flash rate: the default 55 flashes/min.
  flashHalfMs: 60_000 / 55 / 2,
};

/** A span of wall-clock time in which a gateway ran its intersection normally (transition/coordinated). */
export interface Window {
  readonly from: number;
  readonly to: number;
}

const on = (e: HistoryEntry, channel: number) => e.outputs[channel] === "1";

/** What each group shows in an entry: "g", "y", "r" (vehicle), "w", "dw" (pedestrian), or "dark". */
function shows(layout: LampLayout, e: HistoryEntry): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [g, c] of Object.entries(layout.vehicles)) {
    const lit = [on(e, c.green) ? "g" : "", on(e, c.yellow) ? "y" : "", on(e, c.red) ? "r" : ""].join("");
    out[g] = lit === "" ? "dark" : lit;
  }
  for (const [g, c] of Object.entries(layout.pedestrians)) {
    const lit = [on(e, c.walk) ? "w" : "", on(e, c.dontWalk) ? "dw" : ""].join("");
    out[g] = lit === "" ? "dark" : lit;
  }
  return out;
}

/** Green, yellow or walk: what a conflict monitor watches. */
const active = (s: string) => s.includes("g") || s.includes("y") || s === "w";

/**
 * Safety from what the lamps really did (the module records every change of its outputs): conflicting
 * greens/yellows/walks never together; a vehicle green ends in yellow (unless the module's watchdog
 * put it to its safe state, its master being dead); a yellow written off is at least the configured
 * yellow; a conflicting group starts at least the red clearance after a vehicle group's yellow ends;
 * within `normal` windows, no vehicle head dark and no pedestrian head dark longer than the red-fail
 * time (flashing DON'T WALK blinks). Returns the violations, each with its time.
 */
export function lampViolations(
  layout: LampLayout,
  history: readonly HistoryEntry[],
  normal: readonly Window[],
  toleranceMs: number,
): string[] {
  const problems: string[] = [];
  const at = (t: number) => `${new Date(t).toISOString()} (${t})`;
  const groups = [...Object.keys(layout.vehicles), ...Object.keys(layout.pedestrians)];
  const permissive = (a: string, b: string) =>
    layout.permissive.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
  const conflicting = groups.flatMap((a, i) =>
    groups.slice(i + 1).flatMap((b) => (permissive(a, b) ? [] : [[a, b] as const])),
  );
  const yellowSince: Record<string, number | null> = {};
  const clearedAt: Record<string, number> = {};
  const darkSince: Record<string, number | null> = {};
  /** Dark spans are judged by how much of them lies in normal operation. */
  const darkSpan = (g: string, from: number, to: number) => {
    for (const w of normal) {
      const inside = Math.min(to, w.to) - Math.max(from, w.from);
      if (g in layout.vehicles && inside > 0)
        problems.push(
          `${at(Math.max(from, w.from))}: vehicle head ${g} dark for ${inside} ms in normal operation`,
        );
      if (g in layout.pedestrians && inside > 800 + toleranceMs)
        problems.push(
          `${at(Math.max(from, w.from))}: pedestrian head ${g} dark for ${inside} ms in normal operation`,
        );
    }
  };
  let prev: Record<string, string> | null = null;
  for (const entry of history) {
    const now = shows(layout, entry);
    for (const [a, b] of conflicting)
      if (active(now[a] ?? "") && active(now[b] ?? ""))
        problems.push(`${at(entry.t)}: conflicting ${a}=${now[a]} and ${b}=${now[b]} (${entry.outputs})`);
    for (const g of Object.keys(layout.vehicles)) {
      const was = prev?.[g] ?? "dark";
      const is = now[g] ?? "dark";
      if (was.includes("g") && !is.includes("g") && entry.cause !== "watchdog" && is !== "y")
        problems.push(
          `${at(entry.t)}: ${g} green -> ${is} without yellow (${entry.outputs}, ${entry.cause})`,
        );
      if (!was.includes("y") && is.includes("y")) yellowSince[g] = entry.t;
      if (was.includes("y") && !is.includes("y")) {
        const since = yellowSince[g] ?? null;
        if (entry.cause === "write" && since !== null && entry.t - since < layout.yellowMs - toleranceMs)
          problems.push(`${at(entry.t)}: ${g} yellow cut to ${entry.t - since} ms (${entry.outputs})`);
        yellowSince[g] = null;
        if (entry.cause === "write") clearedAt[g] = entry.t;
      }
    }
    // Red clearance: a group conflicting with a vehicle group that just cleared waits for it.
    for (const g of groups) {
      const was = prev?.[g] ?? "dark";
      const is = now[g] ?? "dark";
      const starts = (is.includes("g") && !was.includes("g")) || (is === "w" && was !== "w");
      if (!starts || entry.cause !== "write") continue;
      for (const v of Object.keys(layout.vehicles)) {
        if (v === g || permissive(v, g)) continue;
        const cleared = clearedAt[v];
        if (cleared !== undefined && entry.t - cleared < layout.redClearanceMs - toleranceMs)
          problems.push(
            `${at(entry.t)}: ${g} starts ${entry.t - cleared} ms after ${v}'s yellow ended (red clearance ${layout.redClearanceMs} ms)`,
          );
      }
    }
    for (const g of groups) {
      const dark = now[g] === "dark";
      if (dark) darkSince[g] ??= entry.t;
      else {
        const since = darkSince[g] ?? null;
        if (since !== null) darkSpan(g, since, entry.t);
        darkSince[g] = null;
      }
    }
    prev = now;
  }
  const last = history.at(-1)?.t ?? 0;
  for (const g of groups) {
    const since = darkSince[g] ?? null;
    if (since !== null) darkSpan(g, since, Math.max(last, ...normal.map((w) => w.to)));
  }
  return problems;
}

/** The successive lamp states of one group ("g", "y", "r", "w", "dw", "dark" or a mix): equal neighbours are one run. */
function runsOfGroup(
  layout: LampLayout,
  history: readonly HistoryEntry[],
  group: string,
): { lamp: string; from: number; to: number | null }[] {
  const runs: { lamp: string; from: number; to: number | null }[] = [];
  for (const entry of history) {
    const lamp = shows(layout, entry)[group] ?? "dark";
    const last = runs.at(-1);
    if (last?.lamp === lamp) continue;
    if (last) last.to = entry.t;
    runs.push({ lamp, from: entry.t, to: null });
  }
  return runs;
}

/** A clean stop of a gateway, as the test saw it and the gateway logged it. */
export interface CleanStop {
  /** When the test sent the stop signal. */
  readonly signalAt: number;
  /** The gateway's "all-red reached" log line (null when it never said so). */
  readonly allRedAt: number | null;
  /** When the gateway had written the safe state: its `gateway-stopped` audit entry, else its exit. */
  readonly handedOverAt: number;
}

/**
 * What a clean stop must show on the lamps, on top of `lampViolations` (which holds for a stop with
 * no exemption: no green ends without its yellow, no yellow is cut): after the signal nothing new
 * starts (a green or a WALK, past one tick and the allowance); every green and WALK shown at the signal
 * serves its minimum and ends before the hand-over; every WALK ends through its pedestrian clearance
 * (flashing DON'T WALK, then steady DON'T WALK no sooner than the clearance less half a flash, and
 * all-red no sooner than the full clearance); all-red comes at least the red clearance after the last
 * yellow; and at the hand-over every vehicle head is red and every pedestrian head DON'T WALK.
 */
export function stopViolations(
  layout: LampLayout,
  history: readonly HistoryEntry[],
  stop: CleanStop,
  toleranceMs: number,
): string[] {
  const problems: string[] = [];
  const at = (t: number) => `${new Date(t).toISOString()} (${t})`;
  const { signalAt, allRedAt, handedOverAt } = stop;
  const story = (runs: { lamp: string; from: number; to: number | null }[]) =>
    runs
      .filter((r) => (r.to ?? Infinity) > signalAt - 20_000 && r.from <= handedOverAt + 1000)
      .map((r) => `${r.lamp}@${r.from}`)
      .join(" ");
  let lastYellowEnd: number | null = null;
  for (const g of Object.keys(layout.vehicles)) {
    const runs = runsOfGroup(layout, history, g);
    for (const [k, r] of runs.entries()) {
      const prev = runs[k - 1]?.lamp ?? "dark";
      if (
        r.lamp.includes("g") &&
        !prev.includes("g") &&
        r.from > signalAt + toleranceMs &&
        r.from <= handedOverAt
      )
        problems.push(`${at(r.from)}: ${g} green started after the stop signal: ${story(runs)}`);
      if (!r.lamp.includes("g") || r.from > signalAt || (r.to ?? Infinity) <= signalAt) continue;
      // The green showing at the signal: its minimum served, ended before the hand-over.
      if (r.to === null || r.to > handedOverAt)
        problems.push(
          `${at(handedOverAt)}: ${g} still green at the hand-over to the safe state: ${story(runs)}`,
        );
      else if (r.to - r.from < layout.minGreenMs - toleranceMs)
        problems.push(`${at(r.to)}: ${g} green cut to ${r.to - r.from} ms by the stop: ${story(runs)}`);
    }
    for (const r of runs)
      if (r.lamp.includes("y") && r.to !== null && r.to > signalAt && r.to <= handedOverAt)
        lastYellowEnd = Math.max(lastYellowEnd ?? 0, r.to);
  }
  for (const p of Object.keys(layout.pedestrians)) {
    const runs = runsOfGroup(layout, history, p);
    for (const [k, r] of runs.entries()) {
      const prev = runs[k - 1]?.lamp ?? "dark";
      if (r.lamp === "w" && prev !== "w" && r.from > signalAt + toleranceMs && r.from <= handedOverAt)
        problems.push(`${at(r.from)}: ${p} WALK started after the stop signal: ${story(runs)}`);
      if (r.lamp !== "w") continue;
      const walkEnd = r.to ?? Infinity;
      // Every WALK whose clearance the stop could reach: shown at the signal, or clearing at it.
      if (walkEnd <= signalAt - layout.pedestrianClearanceMs - toleranceMs || r.from > handedOverAt) continue;
      if (walkEnd > handedOverAt) {
        problems.push(
          `${at(handedOverAt)}: ${p} still WALK at the hand-over to the safe state: ${story(runs)}`,
        );
        continue;
      }
      if (walkEnd > signalAt && walkEnd - r.from < layout.walkMs - toleranceMs)
        problems.push(`${at(walkEnd)}: ${p} WALK cut to ${walkEnd - r.from} ms by the stop: ${story(runs)}`);
      // Its clearance: flashing (DON'T WALK and dark in turn), then steady DON'T WALK to the hand-over.
      const after = runs.slice(k + 1).filter((x) => x.from <= handedOverAt);
      const steady = after.at(-1);
      if (!after.every((x) => x.lamp === "dw" || x.lamp === "dark") || steady?.lamp !== "dw")
        problems.push(`${at(walkEnd)}: ${p} did not end its WALK through DON'T WALK: ${story(runs)}`);
      else if (!after.some((x) => x.lamp === "dark"))
        problems.push(
          `${at(walkEnd)}: ${p} WALK to steady DON'T WALK with no flashing clearance: ${story(runs)}`,
        );
      else if (steady.from - walkEnd < layout.pedestrianClearanceMs - layout.flashHalfMs - toleranceMs)
        problems.push(
          `${at(steady.from)}: ${p} clearance cut to ${steady.from - walkEnd} ms (flashing seen): ${story(runs)}`,
        );
      if (allRedAt !== null && allRedAt - walkEnd < layout.pedestrianClearanceMs - toleranceMs)
        problems.push(
          `${at(allRedAt)}: all-red reached ${allRedAt - walkEnd} ms after ${p}'s WALK ended (clearance ${layout.pedestrianClearanceMs} ms)`,
        );
    }
  }
  if (
    allRedAt !== null &&
    lastYellowEnd !== null &&
    allRedAt - lastYellowEnd < layout.redClearanceMs - toleranceMs
  )
    problems.push(
      `${at(allRedAt)}: all-red reached ${allRedAt - lastYellowEnd} ms after the last yellow ended (red clearance ${layout.redClearanceMs} ms)`,
    );
  let last: HistoryEntry | undefined;
  for (const entry of history) if (entry.t <= handedOverAt) last = entry;
  const lamps = last ? shows(layout, last) : null;
  const safe =
    lamps !== null &&
    Object.keys(layout.vehicles).every((g) => lamps[g] === "r") &&
    Object.keys(layout.pedestrians).every((p) => lamps[p] === "dw");
  if (!safe) problems.push(`${at(handedOverAt)}: not all-red at the hand-over: ${JSON.stringify(lamps)}`);
  return problems;
}

/**
 * The windows in which a gateway ran its intersection normally, from its audit trail: from a mode
 * event into transition/coordinated to the next mode event out of them, the next start, the first of
 * `deaths` (a kill leaves no event), or `end`. A kill in `resumedAfter` whose next start took the lamps
 * over (`gateway-started` with `how: resumed`) ends nothing: the lamps ran on normally across it.
 */
export function normalWindows(
  events: readonly EventRow[],
  end: number,
  deaths: readonly number[] = [],
  resumedAfter: readonly number[] = [],
): Window[] {
  const starts = events.filter((e) => e.type === "gateway-started");
  const resumedStarts = new Set(
    resumedAfter
      .map((t) => starts.find((e) => e.at_wall_ms >= t))
      .filter((e): e is EventRow => e !== undefined && e.detail.how === "resumed")
      .map((e) => e.seq),
  );
  const windows: Window[] = [];
  let from: number | null = null;
  const close = (t: number) => {
    if (from !== null) windows.push({ from, to: t });
    from = null;
  };
  for (const e of events) {
    if (resumedStarts.has(e.seq)) continue;
    if (e.type === "gateway-started" || e.type === "gateway-stopped") close(e.at_wall_ms);
    if (e.type !== "mode") continue;
    const mode = String(e.detail.mode);
    if (mode === "transition" || mode === "coordinated") from ??= e.at_wall_ms;
    else close(e.at_wall_ms);
  }
  close(end);
  // A window ends where its process was killed.
  return windows.map((w) => ({ from: w.from, to: Math.min(w.to, ...deaths.filter((d) => d > w.from)) }));
}

/** The entries in which the module's watchdog fell to the safe state. */
export const watchdogTrips = (history: readonly HistoryEntry[]) =>
  history.filter((e) => e.cause === "watchdog");
