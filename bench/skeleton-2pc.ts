import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import mqtt, { type MqttClient } from "mqtt";
import { stopChild } from "./gateway-processes.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * The floor of a corridor plan switch at N intersections: the message pattern of `plan push`
 * (acquire → granted, prepare → vote, forced decision, decision → ack) between a coordinator in this
 * process and N participant processes (bench/skeleton-participant.ts), on the product's stack
 * (mqtt.js, QoS 1, better-sqlite3 in WAL with synchronous = FULL) but with none of its code. What
 * `plan push` costs beyond this is ours; this much is the machine's.
 *
 * Critical path of one round at N = 1: three request/reply round trips through the broker and three
 * forced writes (the participant's prepare, the coordinator's decision, the participant's decision).
 */

// Next to this file once compiled: dist/bench/skeleton-participant.js.
const PARTICIPANT = fileURLToPath(new URL("./skeleton-participant.js", import.meta.url));
const WARMUP_ROUNDS = 3;
const READY_TIMEOUT_MS = 30_000;
const ROUND_TIMEOUT_MS = 10_000;

/** A ~5 KB plan as JSON text, about the size of a 16-intersection timing plan. */
function makePlan(): string {
  const plan = { corridor: "skeleton", cycleS: 90, intersections: [] as unknown[] };
  for (let i = 0; JSON.stringify(plan).length < 5000; i++)
    plan.intersections.push({ id: `x${i}`, offsetS: (i * 7) % 90, splitsS: [32, 18, 24, 16], ped: true });
  return JSON.stringify(plan);
}

function spawnParticipant(url: string, id: string, dir: string): ChildProcess {
  // stdin is a pipe only so that a participant notices (stdin ends) if this process dies.
  return spawn(process.execPath, [PARTICIPANT, url, id, dir], { stdio: ["pipe", "pipe", "inherit"] });
}

function untilReady(child: ChildProcess, id: string, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`participant ${id} not ready within ${READY_TIMEOUT_MS / 1000} s`)),
      Math.max(0, deadline - performance.now()),
    );
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`participant ${id} exited (${code}) before it was ready`));
    };
    child.once("exit", onExit);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line !== "ready") return;
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve();
    });
  });
}

type ReplyType = "granted" | "vote" | "ack";

/** Sends one message to every participant and waits for the matching reply from each of them. */
class Coordinator {
  private waiting: { type: ReplyType; txn: string; missing: Set<string>; done: () => void } | null = null;

  constructor(
    private readonly client: MqttClient,
    private readonly ids: readonly string[],
  ) {
    client.on("message", (topic, payload) => {
      const w = this.waiting;
      let msg: { type?: unknown; txn?: unknown };
      try {
        msg = JSON.parse(payload.toString()) as typeof msg;
      } catch {
        return; // not one of ours: the participant that should have sent it will time out
      }
      // Replies to an earlier, abandoned round or phase are ignored.
      if (!w || msg.type !== w.type || msg.txn !== w.txn) return;
      w.missing.delete(topic.slice("skel/coord/in/".length));
      if (w.missing.size === 0) w.done();
    });
  }

  async exchange(
    send: { type: string; txn: string; [k: string]: string },
    expect: ReplyType,
    deadline: number,
  ): Promise<void> {
    const payload = JSON.stringify(send);
    const missing = new Set(this.ids);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => {
            const who = [...missing].join(", ");
            reject(
              new Error(`round ${send.txn}: no ${expect} within ${ROUND_TIMEOUT_MS / 1000} s from ${who}`),
            );
          },
          Math.max(0, deadline - performance.now()),
        );
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        this.waiting = { type: expect, txn: send.txn, missing, done };
        for (const id of this.ids)
          this.client.publish(`skel/${id}/in`, payload, { qos: 1 }, (err) => {
            if (!err) return;
            clearTimeout(timer);
            reject(new Error(`round ${send.txn}: publish to ${id} failed: ${err.message}`));
          });
      });
    } finally {
      this.waiting = null;
    }
  }
}

async function measure(url: string, n: number, rounds: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-bench-skeleton-"));
  const ids = Array.from({ length: n }, (_, i) => `p${i}`);
  const children: ChildProcess[] = [];
  let client: MqttClient | null = null;
  let db: Database.Database | null = null;
  try {
    const readyBy = performance.now() + READY_TIMEOUT_MS;
    for (const id of ids) children.push(spawnParticipant(url, id, dir));
    await Promise.all(children.map((child, i) => untilReady(child, ids[i] as string, readyBy)));

    client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    (client.stream as unknown as { setNoDelay(v: boolean): void }).setNoDelay(true);
    const coordinator = new Coordinator(client, ids);
    await client.subscribeAsync("skel/coord/in/+", { qos: 1 });

    db = new Database(join(dir, "coordinator.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE decision (txn TEXT PRIMARY KEY, decision TEXT NOT NULL)");
    const recordDecision = db.prepare("INSERT INTO decision (txn, decision) VALUES (?, ?)");

    const plan = makePlan();
    const samples: number[] = [];
    for (let r = 0; r < WARMUP_ROUNDS + rounds; r++) {
      const txn = `${n}-${r}`;
      const start = process.hrtime.bigint();
      const deadline = performance.now() + ROUND_TIMEOUT_MS;
      await coordinator.exchange({ type: "acquire", txn }, "granted", deadline);
      await coordinator.exchange({ type: "prepare", txn, plan }, "vote", deadline);
      recordDecision.run(txn, "commit");
      await coordinator.exchange({ type: "decision", txn, decision: "commit" }, "ack", deadline);
      if (r >= WARMUP_ROUNDS) samples.push(elapsedMs(start));
    }
    return summarize(`skeleton 2PC (no greenwave code), ${n} participant processes`, "ms", samples, {
      participants: n,
    });
  } finally {
    await client?.endAsync(true).catch(() => {});
    db?.close();
    await Promise.all(children.map((child) => stopChild(child, "SIGTERM")));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One result per size N: a whole round (first acquire sent to last ack received), N processes. */
export async function benchSkeleton2pc(
  url: string,
  sizes: readonly number[],
  rounds: number,
): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const n of sizes) results.push(await measure(url, n, rounds));
  return results;
}
