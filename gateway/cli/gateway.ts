import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { OutputStage } from "../../devices/output-stage.js";
import { loadIntersectionSetup } from "../config/load.js";
import { systemClock } from "../shell/clock.js";
import { IntersectionRunner } from "../shell/intersection-runner.js";
import { FileLatchStore } from "../shell/latch-store.js";
import { createLogger } from "../shell/log.js";
import { UsageError } from "./usage-error.js";

interface GatewayOptions {
  config: string;
  dataDir: string;
  tickMs: string;
}

export function registerGatewayCommand(program: Command): void {
  program
    .command("gateway")
    .description(
      "run one intersection against its I/O modules (no broker needed: signal safety never depends on the network)",
    )
    .requiredOption("--config <file>", "the intersection file")
    .option("--data-dir <dir>", "where the gateway keeps its state (the latched fault)", "/var/lib/greenwave")
    .option("--tick-ms <ms>", "output tick", "100")
    .action((options: GatewayOptions) => runGateway(options));
}

async function runGateway(options: GatewayOptions): Promise<void> {
  const tickMs = Number(options.tickMs);
  if (!Number.isInteger(tickMs) || tickMs < 20 || tickMs > 1000) {
    throw new UsageError(
      `--tick-ms must be a whole number of milliseconds from 20 to 1000, got "${options.tickMs}"`,
    );
  }
  const setup = loadIntersectionSetup(options.config);
  const intersection = setup.intersection.intersection;
  const log = createLogger(`greenwave-gateway:${intersection.id}`);
  const dataDir = resolve(options.dataDir, intersection.id);
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    throw new UsageError(
      `cannot create the data directory ${dataDir}: ${(error as Error).message} (use --data-dir)`,
    );
  }

  // Handlers first: until a listener exists, SIGINT's default action kills the process mid-start.
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((done) => {
    stopRequested = done;
  });
  process.once("SIGINT", () => stopRequested());
  process.once("SIGTERM", () => stopRequested());

  const latchStore = new FileLatchStore(join(dataDir, "latch.json"));
  const outputs = new OutputStage(intersection, setup.intersection.modules, () => systemClock.now().monoMs);
  if (outputs.layouts.length === 0)
    log.warn("no devices configured: the lamps are computed and checked, but drive nothing");
  await outputs.open();
  let lastAspects = "";
  const runner = new IntersectionRunner(
    intersection,
    setup.initialPlan,
    systemClock,
    latchStore,
    {
      writeOutputs(aspects) {
        const line = aspects.join(",");
        if (line !== lastAspects) {
          lastAspects = line;
          log.debug(
            { aspects: Object.fromEntries(aspects.map((a, i) => [intersection.groups[i]?.id, a])) },
            "outputs",
          );
        }
      },
      exchange: (lamps) => outputs.exchange(lamps),
      onSignal(event) {
        if (event.type !== "stage-start") log.info({ event }, event.type);
      },
      onFault(latch) {
        log.error({ latch }, `FAULT latched, intersection in flash: ${latch.message}`);
      },
      onReset(by) {
        log.warn({ by }, "fault reset by operator");
      },
    },
    tickMs,
  );
  const restored = runner.controller.mon.latch;
  if (restored)
    log.error({ latch: restored }, `starting in fault flash: latched before restart: ${restored.message}`);
  log.info(
    {
      intersection: intersection.id,
      plan: setup.initialPlan.planId,
      devices: setup.intersection.modules.map((m) => ({
        id: m.deviceId,
        profile: m.profile.id,
        unit: m.unitId,
      })),
      dataDir,
    },
    "gateway started",
  );
  runner.start();
  await stopped;
  await runner.stop();
  for (const error of await outputs.writeSafeState())
    log.error({ error: error.message }, "could not write the safe state");
  await outputs.close();
  log.info("gateway stopped");
}
