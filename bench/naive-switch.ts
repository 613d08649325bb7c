import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import mqtt, { type MqttClient } from "mqtt";
import {
  compileIntersectionPlan,
  loadCorridor,
  loadIntersectionSetup,
  loadPlan,
  loadPlanData,
} from "../gateway/config/load.js";
import { freePort } from "../simulators/fixtures/ports.js";
import { elapsedMs } from "./stats.js";

/**
 * The same corridor switch done the naive way, for comparison: a Redis `SET NX PX` lock, then the new
 * plan broadcast to every intersection, each of which checks it exactly as a greenwave participant
 * does (its part of the plan, compiled), writes it to its SQLite store (synchronous FULL) and takes it.
 * No votes, no commit point: whoever got the message runs the plan.
 */

interface NaiveIntersection {
  readonly id: string;
  readonly client: MqttClient;
  readonly db: Database.Database;
  applied: number;
}

export interface NaiveWorld {
  switchOnce(planFile: string, skip?: string): Promise<{ ms: number; applied: number }>;
  stop(): Promise<void>;
}

export function haveRedis(): boolean {
  return spawnSync("sh", ["-c", "command -v redis-server"]).status === 0;
}

export async function startNaiveWorld(
  brokerUrl: string,
  corridorFile: string,
  ids: readonly string[],
): Promise<NaiveWorld> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-naive-"));
  const port = await freePort();
  const redisServer: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 3 });
  redis.on("error", () => {}); // refused while redis-server starts: retried below
  for (let i = 0; i < 50; i++) {
    try {
      await redis.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const corridor = loadCorridor(corridorFile);
  const intersections: NaiveIntersection[] = [];
  for (const id of ids) {
    const setup = loadIntersectionSetup(corridor.intersectionFiles.get(id) as string);
    const client = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4, reconnectPeriod: 0 });
    (client.stream as unknown as { setNoDelay(v: boolean): void }).setNoDelay(true);
    const db = new Database(join(dir, `${id}.db`));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE plan (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)");
    const write = db.prepare("INSERT OR REPLACE INTO plan (id, body) VALUES (1, ?)");
    const x: NaiveIntersection = { id, client, db, applied: 0 };
    client.on("message", (_topic, payload) => {
      const plan = loadPlanData(`naive plan for ${id}`, JSON.parse(payload.toString()), id);
      const compiled = compileIntersectionPlan(setup.intersection.intersection, plan, setup.corridor);
      write.run(JSON.stringify(compiled));
      x.applied++;
      client.publish(`naive/ack/${id}`, "1", { qos: 1 });
    });
    await client.subscribeAsync(`naive/plan/${id}`, { qos: 1 });
    intersections.push(x);
  }
  const coordinator = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4, reconnectPeriod: 0 });
  (coordinator.stream as unknown as { setNoDelay(v: boolean): void }).setNoDelay(true);
  let onAck: ((id: string) => void) | null = null;
  coordinator.on("message", (topic) => onAck?.(topic.split("/")[2] as string));
  await coordinator.subscribeAsync("naive/ack/+", { qos: 1 });
  return {
    async switchOnce(planFile, skip) {
      const plan = JSON.stringify(loadPlan(planFile).raw);
      const before = intersections.map((x) => x.applied);
      const t = process.hrtime.bigint();
      const got = await redis.set("greenwave:lock:corridor", "bench", "PX", 15_000, "NX");
      if (got !== "OK") throw new Error("naive lock not free");
      const waiting = new Set(ids.filter((id) => id !== skip));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        onAck = (id) => {
          waiting.delete(id);
          if (waiting.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
        // A killed intersection never gets its copy: nothing tells the others.
        for (const id of ids) if (id !== skip) coordinator.publish(`naive/plan/${id}`, plan, { qos: 1 });
      });
      await redis.del("greenwave:lock:corridor");
      const ms = elapsedMs(t);
      return { ms, applied: intersections.filter((x, i) => x.applied > (before[i] ?? 0)).length };
    },
    async stop() {
      await coordinator.endAsync();
      for (const x of intersections) {
        await x.client.endAsync();
        x.db.close();
      }
      redis.disconnect();
      redisServer.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
