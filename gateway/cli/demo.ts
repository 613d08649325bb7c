import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import {
  compileIntersectionPlan,
  loadCorridor,
  loadIntersectionSetup,
  loadPlan,
  planFileFor,
} from "../config/load.js";
import { ASPECT_LABEL } from "../core/lamps.js";
import type { Aspect } from "../core/model.js";
import type { SignalEvent } from "../core/sequencer.js";
import { systemClock } from "../shell/clock.js";
import { IntersectionRunner } from "../shell/intersection-runner.js";
import { MemoryLatchStore } from "../shell/latch-store.js";
import { UsageError } from "./usage-error.js";

/** The example corridor shipped in config/, found relative to the installed package. */
export const EXAMPLE_CORRIDOR = fileURLToPath(new URL("../../../config/corridor.yaml", import.meta.url));

interface DemoOptions {
  corridor: string;
  duration?: string;
  switch?: string;
  after: string;
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "run every intersection of a corridor in this process on simulated outputs, printing lamp states",
    )
    .option("--corridor <file>", "corridor file", EXAMPLE_CORRIDOR)
    .option("--duration <seconds>", "stop after this many seconds (default: run until Ctrl-C)")
    .option("--switch <plan>", "schedule a corridor-wide switch to this plan")
    .option("--after <seconds>", "with --switch: activation instant, seconds from now", "60")
    .action((options: DemoOptions) => runDemo(options));
}

function positiveSeconds(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive number of seconds, got "${value}"`);
  return n;
}

async function runDemo(options: DemoOptions): Promise<void> {
  const corridor = loadCorridor(options.corridor);
  const durationS = options.duration === undefined ? null : positiveSeconds(options.duration, "--duration");
  const switchPlan = options.switch ? loadPlan(planFileFor(corridor, options.switch)) : null;
  const afterS = positiveSeconds(options.after, "--after");
  const width = Math.max(...corridor.raw.intersections.map((i) => i.id.length));
  const clock = systemClock;
  const started = clock.now();
  const stamp = () => `${((clock.now().monoMs - started.monoMs) / 1000).toFixed(1).padStart(7)}s`;
  process.stdout.write(
    `greenwave demo: corridor ${corridor.raw.id}, ${corridor.raw.intersections.length} intersections, simulated outputs${durationS ? `, ${durationS} s` : ", Ctrl-C to stop"}\n` +
      `legend: G green, Y yellow, r red, r*/Y* flashing, W walk, W* flashing don't walk, dw don't walk, - dark\n`,
  );

  // Handlers first: until a listener exists, SIGINT's default action kills the process mid-start.
  const runners: IntersectionRunner[] = [];
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((done) => {
    stopRequested = done;
  });
  process.once("SIGINT", () => stopRequested());
  process.once("SIGTERM", () => stopRequested());
  if (durationS !== null) setTimeout(() => stopRequested(), durationS * 1000).unref();

  for (const [id, file] of corridor.intersectionFiles) {
    const setup = loadIntersectionSetup(file);
    const intersection = setup.intersection.intersection;
    const name = id.padEnd(width);
    let lastLine = "";
    const runner: IntersectionRunner = new IntersectionRunner(
      intersection,
      setup.initialPlan,
      clock,
      new MemoryLatchStore(),
      {
        writeOutputs(aspects: readonly Aspect[]) {
          const seq = runner?.controller.seq;
          const stage = seq?.mode === "running" ? (seq.plan.stages[seq.stage]?.id ?? "") : "";
          const line = `${runner ? runner.mode.padEnd(11) : "startup    "} ${(seq?.plan.planId ?? "").padEnd(9)} ${stage.padEnd(6)} ${aspects
            .map((a, i) => `${intersection.groups[i]?.id}:${ASPECT_LABEL[a]}`.padEnd(6))
            .join(" ")}`;
          const key = line.replaceAll("*", "");
          if (key !== lastLine) {
            lastLine = key;
            process.stdout.write(`${stamp()} ${name} ${line}\n`);
          }
        },
        onSignal(event: SignalEvent) {
          const text = describeSignal(event);
          if (text) process.stdout.write(`${stamp()} ${name} ${text}\n`);
        },
        onFault(latch) {
          process.stdout.write(`${stamp()} ${name} FAULT ${latch.kind}: ${latch.message}\n`);
        },
      },
    );
    runners.push(runner);
    if (switchPlan) {
      const plan = compileIntersectionPlan(intersection, switchPlan, corridor);
      runner.dispatch({ type: "schedule-plan", plan, activationWallMs: started.wallMs + afterS * 1000 });
    }
  }
  for (const runner of runners) runner.start();
  await stopped;
  await Promise.all(runners.map((runner) => runner.stop()));
  process.stdout.write(`${stamp()} demo stopped\n`);
}

function describeSignal(event: SignalEvent): string | null {
  switch (event.type) {
    case "mode":
      return `mode ${event.previous} -> ${event.mode}`;
    case "cycle-start":
      return event.offsetErrorMs === 0 && event.correctionMs === 0
        ? null
        : `cycle of ${event.planId}: offset error ${(event.offsetErrorMs / 1000).toFixed(1)} s, correction ${(event.correctionMs / 1000).toFixed(1)} s`;
    case "plan-activated":
      return `plan ${event.planId} v${event.version} in force (${(event.lateByMs / 1000).toFixed(1)} s after its activation instant)`;
    case "plan-scheduled":
      return `plan ${event.planId} scheduled for ${new Date(event.activationWallMs).toISOString()}`;
    case "plan-superseded":
      return `plan ${event.planId} superseded by ${event.by}`;
    case "plan-rejected":
      return `plan ${event.planId} rejected: ${event.reason}`;
    case "stage-start":
      return null;
  }
}
