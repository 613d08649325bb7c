import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { CLI } from "./cli.js";

/** greenwave processes started the way a user starts them, with their output kept (JSON log lines parsed). */
export interface Proc {
  child: ChildProcess;
  out: string;
  lines: Record<string, unknown>[];
}

const procs: Proc[] = [];
export const dirs: string[] = [];

/** Call from afterEach: stops what a test started and removes its directories. */
export async function cleanupProcesses(): Promise<void> {
  for (const p of procs.splice(0)) {
    // A child killed by a signal has no exit code but a signal code: it is gone already.
    if (p.child.exitCode === null && p.child.signalCode === null) await interruptTwice(p.child);
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * Teardown's stop: a first SIGINT starts a gateway's clean stop (clearances run to all-red, up to
 * ~30 s), a second one cuts it short. Resolves when the child has exited.
 */
export async function interruptTwice(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGINT");
  const again = setTimeout(() => child.kill("SIGINT"), 300);
  await exited;
  clearTimeout(again);
}

/** Keeps a child's output in `out`, and each complete JSON log line parsed in `lines`. */
export function captureOutput(
  child: ChildProcess,
  sink: { out: string; lines: Record<string, unknown>[] },
): void {
  let partial = "";
  const take = (d: Buffer) => {
    const text = d.toString();
    sink.out += text;
    const parts = (partial + text).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (!line.startsWith("{")) continue;
      try {
        sink.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line: it stays in `out`
      }
    }
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
}

export function start(args: string[], env?: NodeJS.ProcessEnv): Proc {
  const child = spawn("node", [CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  const proc: Proc = { child, out: "", lines: [] };
  captureOutput(child, proc);
  procs.push(proc);
  return proc;
}

export function cli(args: string[]) {
  // SIGKILL: a hung command must not hang the test (a first SIGTERM only starts a clean stop).
  return spawnSync("node", [CLI, ...args], { encoding: "utf8", timeout: 20_000, killSignal: "SIGKILL" });
}

export async function stop(proc: Proc): Promise<number | null> {
  const code = new Promise<number | null>((resolve) => proc.child.once("exit", (c) => resolve(c)));
  await interruptTwice(proc.child);
  return await code;
}

/**
 * `greenwave demo` over a test corridor of `intersections` (4 by default; 30 s cycle, one simulated
 * module each), as a user starts it, with any more of the demo's flags; returns the fixture, the process
 * and the broker URL it printed.
 */
export async function startDemoCorridor(options: { intersections?: number; flags?: readonly string[] } = {}) {
  const n = options.intersections ?? 4;
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const fixture = writeCorridorFixture(n, { devicePort: (i) => ports[i] ?? null });
  dirs.push(fixture.dir);
  const demo = start([
    ...["demo", "--corridor", fixture.corridor, "--port", "0", "--http-port", "0", "--console-port", "0"],
    ...["--quiet", ...(options.flags ?? [])],
  ]);
  await until("the demo", 40_000, () => demo.out.includes("legend:"));
  const broker = /broker\s+(mqtt:\/\/\S+)/.exec(demo.out)?.[1] as string;
  return { fixture, demo, broker };
}

/**
 * config/ copied (without its broken examples), each example intersection's module moved to a free
 * port (the demo's own 15021–15024 may be another test's) and its file passed through `edit`; returns
 * the copy's corridor file.
 */
export async function exampleConfigCopy(
  edit: (id: string, text: string) => string = (_, text) => text,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-config-"));
  dirs.push(dir);
  cpSync("config", dir, { recursive: true, filter: (src) => !src.includes("broken") });
  for (const id of ["elm", "oak", "pine", "cedar"]) {
    const file = join(dir, "intersections", `${id}.yaml`);
    const port = await freePort();
    const text = readFileSync(file, "utf8").replace(/tcp: "127\.0\.0\.1:\d+"/, `tcp: "127.0.0.1:${port}"`);
    writeFileSync(file, edit(id, text));
  }
  return join(dir, "corridor.yaml");
}
