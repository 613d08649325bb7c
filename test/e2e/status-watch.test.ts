import { execFile } from "node:child_process";
import mqtt from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import type { Status } from "../../gateway/protocol/messages.js";
import { exampleStatus } from "../support/status-fixture.js";
import { intersectionTopics } from "../../gateway/protocol/topics.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce, CLI } from "./cli.js";
import { cleanupProcesses, start } from "./processes.js";

/**
 * `greenwave status` against a real broker holding the retained statuses of the example corridor, as
 * gateways publish them: the table, `--json`, `--wide` and `--watch`.
 */

const LONG_FAULT =
  "red lamp of group M failed: no current on channel 3 while red was commanded for 300 ms; the intersection flashes until an operator resets it";
let broker: RunningBroker;
let cycleStart: number;

const status = (id: string, position: number, extra: Partial<Status> = {}): Status =>
  exampleStatus(id, position, Date.now(), extra);

/** The CLI run to its end without blocking this process: the broker it asks lives here. */
async function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return await new Promise((resolve) => {
    execFile("node", [CLI, ...args], { timeout: 20_000, killSignal: "SIGKILL" }, (error, stdout, stderr) =>
      resolve({ status: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

async function publishRetained(url: string, messages: [string, unknown][]): Promise<void> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  for (const [topic, payload] of messages)
    await client.publishAsync(topic, JSON.stringify(payload), { qos: 1, retain: true });
  await client.endAsync();
}

async function corridorOnBroker(): Promise<RunningBroker> {
  const running = await startBroker({ host: "127.0.0.1", port: 0, users: null });
  cycleStart = Date.now() - 12_400;
  const cycle = (offsetErrorMs: number, inStep: boolean) => ({
    stage: "main",
    startedAt: new Date(cycleStart).toISOString(),
    lengthMs: 100_000,
    offsetErrorMs,
    inStep,
  });
  const statuses = [
    status("elm", 0, { mode: "transition", cycle: cycle(14_100, false) }),
    status("oak", 1, { cycle: cycle(-200, true) }),
    status("pine", 2, {
      mode: "fault",
      cycle: null,
      fault: { kind: "red-fail", message: LONG_FAULT, groups: ["M"], at: new Date().toISOString() },
    }),
    status("cedar", 3, { cycle: cycle(0, true) }),
  ];
  await publishRetained(
    running.url,
    statuses.flatMap((s) => {
      const topics = intersectionTopics(s.corridor, s.intersection);
      return [
        [topics.status, s],
        [topics.availability, { v: 1, online: s.intersection !== "cedar" }],
      ] as [string, unknown][];
    }),
  );
  return running;
}

beforeAll(async () => {
  buildOnce();
  broker = await corridorOnBroker();
}, 180_000);
afterAll(() => broker.close());
afterEach(() => cleanupProcesses());

describe("greenwave status", () => {
  it("--json: stage, second of the cycle, offset error and in-step per intersection", async () => {
    const run = await cli(["status", "--broker", broker.url, "--json"]);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as {
      intersections: { id: string; online: boolean; mode: string; cycle: Record<string, unknown> | null }[];
    };
    const [elm, oak, pine, cedar] = report.intersections;
    expect(elm).toMatchObject({
      id: "elm",
      mode: "transition",
      cycle: {
        stage: "main",
        lengthMs: 100_000,
        startedAt: new Date(cycleStart).toISOString(),
        offsetErrorMs: 14_100,
        inStep: false,
      },
    });
    // Computed by the reader: 12.4 s after the cycle's start when published, a little more by now.
    expect(elm?.cycle?.second).toBeGreaterThanOrEqual(12);
    expect(elm?.cycle?.second).toBeLessThan(30);
    expect(oak?.cycle).toMatchObject({ offsetErrorMs: -200, inStep: true });
    expect(pine).toMatchObject({ mode: "fault", cycle: null });
    expect(cedar).toMatchObject({ online: false });
  });

  it("fits its table in 100 columns (the fault cut); --wide shows every column and the whole fault", async () => {
    const run = await cli(["status", "--broker", broker.url]);
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(100);
    expect(lines.slice(0, 2).join("\n")).toMatch(
      /^corridor main-street\nINTERSECTION\s+MODE\s+PLAN\s+STAGE\s+CYCLE\s+OFFSET\s+IN STEP\s+FAULT$/,
    );
    expect(run.stdout).toMatch(
      /\nelm\s+transition\s+off-peak v1\s+main\s+1\d\/100 s\s+14\.1 s late\s+no\s+-\n/,
    );
    expect(run.stdout).toMatch(
      /\noak\s+coordinated\s+off-peak v1\s+main\s+1\d\/100 s\s+0\.2 s early\s+yes\s+-\n/,
    );
    expect(run.stdout).toMatch(/\npine\s+fault\s+off-peak v1\s+-\s+-\s+-\s+no\s+red-fail: red.*\.\.\.\n/);
    expect(run.stdout).toMatch(/\ncedar\s+OFFLINE\s+off-peak v1\s+-\s+-\s+-\s+-\s+-\n$/);
    expect(run.stdout).not.toContain(LONG_FAULT);

    const wide = await cli(["status", "--broker", broker.url, "--wide"]);
    expect(wide.status, wide.stderr).toBe(0);
    expect(wide.stdout).toContain(LONG_FAULT);
    expect(wide.stdout).toMatch(/main-street\s+cedar\s+OFFLINE\s+coordinated\s+off-peak v1/);
  });

  it("--watch redraws every second, the cycle second advancing, and exits 0 on Ctrl-C", async () => {
    const watch = start(["status", "--broker", broker.url, "--watch"]);
    const frames = () => watch.out.split("(Ctrl-C to stop)\n").slice(1);
    await until("three frames", 10_000, () => frames().length >= 3);
    const seconds = frames().map((frame) => Number(/\nelm\s.*\s(\d+)\/100 s/.exec(frame)?.[1]));
    expect(seconds.every(Number.isFinite), watch.out).toBe(true);
    expect((seconds.at(-1) as number) - (seconds[0] as number)).toBeGreaterThanOrEqual(1);
    const exited = new Promise<number | null>((resolve) => watch.child.once("exit", resolve));
    const sent = performance.now();
    watch.child.kill("SIGINT");
    expect(await exited).toBe(0);
    // The connection closes within its bound (1 s), and nothing is left to keep the process alive.
    expect(performance.now() - sent).toBeLessThan(3_000);
    expect(watch.out).not.toContain("internal error");
  }, 30_000);

  it("--watch --json: one JSON object a line", async () => {
    const watch = start(["status", "--broker", broker.url, "--watch", "--json", "--corridor", "main-street"]);
    await until("two lines", 10_000, () => watch.out.split("\n").length > 2);
    const exited = new Promise<number | null>((resolve) => watch.child.once("exit", resolve));
    watch.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const lines = watch.out.trimEnd().split("\n");
    for (const line of lines) expect((JSON.parse(line) as { corridor: string }).corridor).toBe("main-street");
  }, 30_000);

  it("--watch ends with exit 1 and says so when the broker goes away", async () => {
    const own = await corridorOnBroker();
    const watch = start(["status", "--broker", own.url, "--watch"]);
    await until("a frame", 10_000, () => watch.out.includes("(Ctrl-C to stop)"));
    const exited = new Promise<number | null>((resolve) => watch.child.once("exit", resolve));
    await own.close();
    expect(await exited).toBe(1);
    expect(watch.out).toContain(`greenwave: lost the connection to the broker at ${own.url}`);
  }, 30_000);
});
