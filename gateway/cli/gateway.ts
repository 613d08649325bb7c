import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { type IntersectionSetup, loadIntersectionSetup } from "../config/load.js";
import { checkTickMs } from "../config/tick.js";
import { onReloadSignal } from "../node/config-reload.js";
import { GatewayNode } from "../node/gateway-node.js";
import type { ServiceManagerLink } from "../node/service-feature.js";
import { systemClock } from "../shell/clock.js";
import { createLogger, type Logger } from "../shell/log.js";
import type { Status } from "../protocol/messages.js";
import { readReleaseStateFile } from "../release/release-state.js";
import { RELEASE_STATE_FILE } from "../release/paths.js";
import { readClockSync } from "../shell/clock-sync.js";
import { openSystemdNotifier, systemdEnvironment } from "../shell/systemd-notify.js";
import { markRunning, runningGateway } from "../store/run-marker.js";
import { GatewayStore, StoreError } from "../store/store.js";
import { addBrokerFlags, type BrokerFlags, brokerSettings, parseListenAddress } from "./broker-options.js";
import { exitOnBug } from "./fatal.js";
import { packageVersion } from "./package-version.js";
import { explainPortInUse } from "./port-in-use.js";
import { UsageError } from "./usage-error.js";
import { gatewayPlanTrust, reportPlanTrust } from "./keys-command.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../node/corridor-participant.js";

interface GatewayOptions extends BrokerFlags {
  config: string;
  dataDir: string;
  tickMs: string;
  http?: string;
  trustedKeys?: string;
}

export function registerGatewayCommand(program: Command): void {
  const command = program
    .command("gateway")
    .description(
      "run one intersection against its I/O modules; with --broker also on MQTT (signal safety never depends on the network)",
    )
    .requiredOption("--config <file>", "the intersection file")
    .option(
      "--data-dir <dir>",
      "where the gateway keeps its store (one directory per intersection)",
      "/var/lib/greenwave",
    )
    .option("--tick-ms <ms>", "output tick", "100")
    .option("--http <host:port>", "serve /healthz and /metrics here (e.g. 127.0.0.1:9100)")
    .option(
      "--trusted-keys <dir>",
      "public keys (NAME.pub) and revocations that plans and schedules must be signed with (default: keys/ beside --config if it exists; none: unsigned plans are taken)",
    );
  addBrokerFlags(command, null).action((options: GatewayOptions) => runGateway(options));
}

/** The syntax and absolute range of --tick-ms; what an intersection supports is checked against it. */
export function parseTickMs(value: string): number {
  const tickMs = Number(value);
  if (!Number.isInteger(tickMs) || tickMs < 20 || tickMs > 1000)
    throw new UsageError(`--tick-ms must be a whole number of milliseconds from 20 to 1000, got "${value}"`);
  return tickMs;
}

/**
 * Refuses a tick the intersection's monitor windows, flash and module windows cannot work with
 * (gateway/config/tick.ts): accepted, it would make the monitor slow and raise false lamp faults.
 */
export function refuseUnsupportedTick(tickMs: number, setup: IntersectionSetup): void {
  const { intersection, modules } = setup.intersection;
  const refusal = checkTickMs(tickMs, intersection, modules, `--tick-ms ${tickMs}`);
  if (refusal) throw new UsageError(refusal);
}

export function openStore(dataDir: string, intersection: string): GatewayStore {
  const dir = resolve(dataDir, intersection);
  const other = runningGateway(dir);
  if (other !== null && other !== process.pid)
    throw new StoreError(
      `another gateway (pid ${other}) runs on the store ${dir}: two would drive the same lamps and fight over one store; stop it first (systemctl stop greenwave), or give this one its own --data-dir`,
    );
  try {
    return GatewayStore.open(dir);
  } catch (error) {
    if (error instanceof StoreError) throw new UsageError(`${error.message} (use --data-dir)`);
    throw error;
  }
}

async function runGateway(options: GatewayOptions): Promise<void> {
  const tickMs = parseTickMs(options.tickMs);
  const http = options.http ? parseListenAddress(options.http, "--http") : null;
  const broker = brokerSettings(options);
  const setup = loadIntersectionSetup(options.config);
  // Before anything is opened (store, modules, broker, HTTP): a refused tick leaves no trace.
  refuseUnsupportedTick(tickMs, setup);
  const intersection = setup.intersection.intersection;
  const log = createLogger(`greenwave-gateway:${intersection.id}`);
  exitOnBug(log, `the gateway of ${intersection.id}`);
  // Checked now (a --trusted-keys typo is refused before anything opens), read again for every PREPARE.
  const planTrust = gatewayPlanTrust(options.trustedKeys, options.config, setup.corridor.raw.id);

  // Handlers first: until a listener exists, SIGINT's default action kills the process mid-start.
  // The first stop signal ends every interval through its clearances (bounded); a second cuts that
  // short, loudly: the lamps go to the module's safe state at once.
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((done) => {
    stopRequested = done;
  });
  let node: GatewayNode | null = null;
  let signals = 0;
  const onStopSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) return stopRequested();
    log.error(
      { signal },
      `second stop signal (${signal}): cutting the clearances in progress; the module's safe state takes the lamps now`,
    );
    void node?.stop("cut");
  };
  process.on("SIGINT", onStopSignal);
  process.on("SIGTERM", onStopSignal);
  // SIGHUP (systemctl reload): the intersection file read again, refused or taken at a cycle boundary.
  const reload = onReloadSignal(options.config, log);

  const store = openStore(options.dataDir, intersection.id);
  const unmark = markRunning(dirname(store.file));
  const service = serviceManagerLink(log);
  node = await GatewayNode.start({
    ...{ setup, store, clock: systemClock, log, tickMs, broker, http, service },
    features: [reload.feature],
    readClockSync: () => readClockSync(),
    corridor: { ...DEFAULT_CORRIDOR_SETTINGS, planTrust },
    ...installedRelease(options.dataDir, log),
  }).catch((error: unknown) => explainPortInUse(error, "the gateway's HTTP endpoint", "--http HOST:PORT"));
  // Its keys directory and the corridor's keyring in force; said loudly when there is no trust at all.
  reportPlanTrust(planTrust, options.config, log);
  log.info(
    {
      intersection: intersection.id,
      corridor: node.corridorId,
      plan: setup.initialPlan.planId,
      devices: setup.intersection.modules.map((m) => ({
        id: m.deviceId,
        profile: m.profile.id,
        unit: m.unitId,
      })),
      store: store.file,
      broker: broker?.url ?? null,
      http: node.httpUrl,
    },
    "gateway started",
  );
  if (!broker) log.warn("no broker configured (--broker): running the intersection stand-alone");
  log.info(
    { cleanStopBoundMs: node.cleanStopBoundMs },
    "a stop signal ends every interval through its clearances before the lamps go to the safe state",
  );
  await stopped;
  const outcome = await node.stop("clean");
  store.close();
  unmark();
  log.info({ outcome }, "gateway stopped");
}

/** Under systemd (Type=notify) the gateway reports READY, STATUS, watchdog pings and STOPPING. */
function serviceManagerLink(log: Logger): ServiceManagerLink | undefined {
  const env = systemdEnvironment(process.env, process.pid);
  if (!env.socketPath) return undefined;
  const notifier = openSystemdNotifier(env.socketPath, log);
  return notifier ? { notifier, watchdogMs: env.watchdogMs } : undefined;
}

/** On an installed gateway: the release running and its last upgrade (a rollback is worth a warning). */
function installedRelease(dataDir: string, log: Logger): { release?: NonNullable<Status["release"]> } {
  // The data directory is /var/lib/greenwave on an installed gateway, where activation keeps its state.
  const reading = readReleaseStateFile(join(dataDir, RELEASE_STATE_FILE));
  if (reading.status !== "ok") return {};
  const last = reading.state.history.at(-1) ?? null;
  if (last?.outcome === "rolled-back")
    log.warn(
      { from: last.from, to: last.to, why: last.why },
      `running ${last.from ?? "?"} after release ${last.to} was rolled back`,
    );
  return {
    release: {
      version: packageVersion(),
      lastChange: last
        ? {
            from: last.from,
            to: last.to,
            outcome: last.outcome,
            why: last.why,
            at: new Date(last.atWallMs).toISOString(),
          }
        : null,
    },
  };
}
