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
    for (const p of running) p.child.kill("SIGINT");
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
}

/** Watches every inbox of the corridor (the broker is open: no users file) and reports coordinator traffic. */
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
      const body = (JSON.parse(payload.toString()) as { body?: { type?: string } }).body;
      onMessage({ at: Date.now(), from, to, type: body?.type ?? "?" });
    } catch {
      // not ours to judge here
    }
  });
  await client.subscribeAsync(`greenwave/v1/${corridor}/+/inbox/+`, { qos: 0 });
  return client;
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
}

/** The fixture's lamps (test/support/corridor-fixture.ts: channels and permissive pairs). */
export const FIXTURE_LAYOUT: LampLayout = {
  vehicles: { M: { red: 0, yellow: 1, green: 2 }, S: { red: 3, yellow: 4, green: 5 } },
  pedestrians: { PS: { dontWalk: 6, walk: 7 }, PM: { dontWalk: 8, walk: 9 } },
  permissive: [
    ["M", "PS"],
    ["S", "PM"],
  ],
  yellowMs: 3000,
  redClearanceMs: 1000,
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

/**
 * The windows in which a gateway ran its intersection normally, from its audit trail: from a mode
 * event into transition/coordinated to the next mode event out of them, the next start, the first of
 * `deaths` (a kill leaves no event), or `end`.
 */
export function normalWindows(
  events: readonly EventRow[],
  end: number,
  deaths: readonly number[] = [],
): Window[] {
  const windows: Window[] = [];
  let from: number | null = null;
  const close = (t: number) => {
    if (from !== null) windows.push({ from, to: t });
    from = null;
  };
  for (const e of events) {
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
