import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import type { ArrivalSpec } from "../../simulators/io-module/arrivals.js";
import { type RunningSimulator, startSimulator } from "../../simulators/io-module/simulator.js";
import {
  type LiveModules,
  type LiveTraffic,
  startLiveTraffic,
} from "../../simulators/traffic/live-traffic.js";
import { loadDemand } from "../config/load-demand.js";
import { type RunningBroker, startBroker } from "../broker/broker.js";
import { CorridorModel } from "../console/corridor-model.js";
import { type RunningConsole, startConsole } from "../console/server.js";
import {
  compileIntersectionPlan,
  type IntersectionSetup,
  type LoadedCorridor,
  loadCorridor,
  loadIntersectionSetup,
  loadPlan,
  planFileFor,
} from "../config/load.js";
import { GatewayNode } from "../node/gateway-node.js";
import type { Display } from "../node/runner-hooks.js";
import { type Clock, shiftedClock, systemClock } from "../shell/clock.js";
import { type LoadedSchedule, loadSchedule } from "../config/load-schedule.js";
import { actionLabel, changesBetween } from "../core/schedule/calendar.js";
import { DAY_MS } from "../core/model.js";
import { formatDate, localTimeOf } from "../core/time/zone.js";
import { pushSchedule } from "../operator/plan-push.js";
import { CoordinatorStore } from "../store/coordinator-store.js";
import { createLogger, type Logger } from "../shell/log.js";
import { parsePort } from "./broker-options.js";
import { demoDisplay } from "./demo-display.js";
import { humanLogDestination } from "./demo-log.js";
import { openStore } from "./gateway.js";
import { exitOnBug } from "./fatal.js";
import { explainPortInUse } from "./port-in-use.js";
import { UsageError } from "./usage-error.js";

/** The example corridor shipped in config/, found relative to the installed package. */
export const EXAMPLE_CORRIDOR = fileURLToPath(new URL("../../../config/corridor.yaml", import.meta.url));

interface DemoOptions {
  corridor: string;
  port: string;
  httpPort: string;
  dataDir?: string;
  duration?: string;
  switch?: string;
  after: string;
  quiet?: boolean;
  schedule?: string | false;
  clockStart?: string;
  consolePort: string;
  traffic?: string;
  arrivals: string | false;
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "run a whole corridor on this machine: the embedded broker, one gateway per intersection, each against its simulated I/O module over Modbus TCP",
    )
    .option("--corridor <file>", "corridor file", EXAMPLE_CORRIDOR)
    .option("--port <port>", "broker port on 127.0.0.1 (0: any free port)", "1883")
    .option(
      "--http-port <port>",
      "first gateway's /healthz and /metrics port, the next ones follow (0: any free port)",
      "9101",
    )
    .option(
      "--data-dir <dir>",
      "keep the gateways' stores here (default: a fresh temporary directory, removed at exit)",
    )
    .option("--duration <seconds>", "stop after this many seconds (default: run until Ctrl-C)")
    .option(
      "--switch <plan>",
      "schedule a corridor-wide switch to this plan (locally, without the commit protocol)",
    )
    .option("--after <seconds>", "with --switch: activation instant, seconds from now", "60")
    .option("--quiet", "do not print lamp changes")
    .option(
      "--schedule <file>",
      "commit this time-of-day schedule to the corridor at start (default: schedules/<corridor id>.yaml beside the corridor file, if there is one)",
    )
    .option("--no-schedule", "run without a schedule: the configured plans until a plan push")
    .option(
      "--clock-start <instant>",
      "run the corridor's clocks from this instant (ISO 8601, e.g. 2026-12-01T06:29:30+01:00) instead of now: to see a scheduled change at once",
    )
    .option("--console-port <port>", "the web console's port on 127.0.0.1 (0: any free port)", "8080")
    .option(
      "--traffic <demand>",
      "drive SUMO's traffic with the modules' lamps, in real time (a demand file, e.g. config/demand/off-peak.yaml; needs Debian's sumo)",
    )
    .option(
      "--arrivals <rate>",
      "random vehicles at every vehicle detector of the simulated modules, per hour (push buttons get a quarter of it); off with --traffic, where SUMO's loops drive the detectors",
      "240",
    )
    .option(
      "--no-arrivals",
      "no random arrivals: the side streets are served only on recall or a PUT /inputs",
    )
    .action((options: DemoOptions) => runDemo(options));
}

function positiveSeconds(value: string, flag: string): number {
  return positiveNumber(value, flag, "seconds");
}

function positiveNumber(value: string, flag: string, unit: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive number of ${unit}, got "${value}"`);
  return n;
}

async function runDemo(options: DemoOptions): Promise<void> {
  const corridor = loadCorridor(options.corridor);
  const brokerPort = parsePort(options.port, "--port");
  const httpPort = parsePort(options.httpPort, "--http-port");
  const consolePort = parsePort(options.consolePort, "--console-port");
  const durationS = options.duration === undefined ? null : positiveSeconds(options.duration, "--duration");
  const switchPlan = options.switch ? loadPlan(planFileFor(corridor, options.switch)) : null;
  const afterS = positiveSeconds(options.after, "--after");
  const setups = [...corridor.intersectionFiles.values()].map((file) => loadIntersectionSetup(file));
  const demand = options.traffic === undefined ? null : loadDemand(options.traffic, corridor);
  const arrivalsPerHour =
    options.arrivals === false || demand
      ? null
      : positiveNumber(options.arrivals, "--arrivals", "vehicles per hour");
  const width = Math.max(...setups.map((s) => s.intersection.intersection.id.length));
  const clock = shiftedClock(systemClock, clockOffset(options.clockStart));
  const schedule =
    options.switch || options.schedule === false ? null : demoSchedule(corridor, options.schedule);
  const started = clock.now();
  const stamp = () => `${((clock.now().monoMs - started.monoMs) / 1000).toFixed(1).padStart(7)}s`;
  const print = (line: string) => process.stdout.write(`${line}\n`);
  // The gateways' logs join the lamp lines on the console, in the same one-line human form.
  const log = createLogger(
    "greenwave-demo",
    process.env.GREENWAVE_LOG_LEVEL ?? "warn",
    humanLogDestination(print, stamp, width),
  );
  exitOnBug(log, "the demo");

  // Handlers first: until a listener exists, SIGINT's default action kills the process mid-start.
  const nodes: GatewayNode[] = [];
  const { stopped, requestStop } = stopSignals(nodes, (line) => print(`${stamp()} ${line}`));
  if (durationS !== null) setTimeout(requestStop, durationS * 1000).unref();

  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "greenwave-demo-"));
  let broker: RunningBroker | null = null;
  let webConsole: RunningConsole | null = null;
  let traffic: LiveTraffic | null = null;
  const simulators: RunningSimulator[] = [];
  const stores: ReturnType<typeof openStore>[] = [];
  try {
    broker = await startBroker({ host: "127.0.0.1", port: brokerPort, users: null }).catch((error: unknown) =>
      explainPortInUse(error, "the demo's broker", "--port"),
    );
    webConsole = await startConsole({
      model: new CorridorModel(corridor),
      broker: { url: broker.url },
      host: "127.0.0.1",
      port: consolePort,
      warn: (message) => log.warn(message),
    }).catch((error: unknown) => explainPortInUse(error, "the demo's web console", "--console-port"));
    const { controls, models } = await simulateModules(setups, simulators, log, arrivalsPerHour);
    if (demand) {
      const dir = join(dataDir, "traffic");
      mkdirSync(dir, { recursive: true });
      traffic = await startLiveTraffic({
        corridor,
        demand,
        dir,
        sites: setups.map((setup) => ({
          intersection: setup.intersection,
          modules: models.get(setup.intersection.intersection.id) ?? [],
        })),
        warn: (message) => log.warn(message),
      });
    }
    const display = (setup: IntersectionSetup, name: string, node: () => GatewayNode | null): Display =>
      options.quiet ? {} : demoDisplay(setup, name, node, print, stamp);
    print(
      `greenwave demo: corridor ${corridor.raw.id}, ${setups.length} intersections, ${durationS ? `${durationS} s` : "Ctrl-C to stop"}\n` +
        `  broker      ${broker.url} (embedded aedes, open: no passwords, so anyone on this machine may command every intersection; it listens on loopback only)\n` +
        `  console     ${webConsole.url} (the web console: live intersections and the time-space diagram)\n` +
        `  status      npx greenwave status --broker ${broker.url} (--watch: redrawn every second)\n` +
        `  data        ${dataDir}${ownDataDir ? " (temporary)" : ""}`,
    );
    for (const [index, setup] of setups.entries()) {
      const node = await startDemoGateway(
        setup,
        index,
        { dataDir, brokerUrl: broker.url, httpPort, width, clock },
        stores,
        log,
        display,
      );
      nodes.push(node);
      if (switchPlan) {
        const plan = compileIntersectionPlan(setup.intersection.intersection, switchPlan, corridor);
        node.dispatch({ type: "schedule-plan", plan, activationWallMs: started.wallMs + afterS * 1000 });
      }
    }
    for (const line of controls) print(`  simulator   ${line}`);
    if (arrivalsPerHour !== null)
      print(
        `  detectors   random arrivals: ${arrivalsPerHour} vehicles/h at each loop, ${arrivalsPerHour / 4} presses/h at each push button (--arrivals RATE, --no-arrivals)`,
      );
    for (const line of traffic?.description ?? []) print(`  traffic     ${line}`);
    print(
      "legend: G green, Y yellow, r red, r*/Y* flashing, W walk, W* flashing don't walk, dw don't walk, - dark",
    );
    if (schedule) await commitDemoSchedule(schedule, corridor, broker.url, dataDir, clock, print, stamp);
    await stopped;
    print(
      `${stamp()} stopping: every intersection ends its intervals through their clearances (Ctrl-C again to cut)`,
    );
  } finally {
    await Promise.all(nodes.map((node) => node.stop("clean")));
    for (const store of stores) store.close();
    await webConsole?.close();
    await traffic?.stop();
    await Promise.all(simulators.map((sim) => sim.stop()));
    await broker?.close();
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
  }
  print(`${stamp()} demo stopped`);
}

/** `--clock-start`: how far the demo's wall clock runs from the real one. */
function clockOffset(clockStart: string | undefined): number {
  if (clockStart === undefined) return 0;
  const at = Date.parse(clockStart);
  if (Number.isNaN(at))
    throw new UsageError(
      `--clock-start must be an ISO 8601 instant (2026-12-01T06:29:30+01:00), got "${clockStart}"`,
    );
  return at - Date.now();
}

/** The schedule the demo runs: `--schedule`, else the corridor's own beside it, else none. */
function demoSchedule(corridor: LoadedCorridor, flag: string | undefined): LoadedSchedule | null {
  const file = flag ?? join(dirname(corridor.file), "schedules", `${corridor.raw.id}.yaml`);
  if (flag === undefined && !existsSync(file)) return null;
  return loadSchedule(file, corridor);
}

/**
 * Commits the schedule to the corridor the way an operator would (`greenwave schedule push`): leases,
 * PREPARE, votes, COMMIT through the embedded broker. Every gateway then runs it by its own clock.
 */
async function commitDemoSchedule(
  schedule: LoadedSchedule,
  corridor: LoadedCorridor,
  brokerUrl: string,
  dataDir: string,
  clock: Clock,
  print: (line: string) => void,
  stamp: () => string,
): Promise<void> {
  const store = CoordinatorStore.open(join(dataDir, "demo-coordinator"));
  try {
    const result = await pushSchedule({
      url: brokerUrl,
      name: "demo",
      corridor,
      schedule,
      atWallMs: null,
      leadMs: 3000,
      store,
      ackTimeoutMs: 5000,
      now: () => clock.now(),
    });
    const zone = corridor.timeReference.timeZone ?? "UTC";
    const next = changesBetween(schedule.schedule, clock.now().wallMs, clock.now().wallMs + 8 * DAY_MS, 1)[0];
    print(
      `${stamp()} schedule ${schedule.raw.id} v${schedule.raw.version} ${result.outcome} on every intersection (${result.txnId})` +
        (next
          ? `; next change ${formatInZone(next.atWallMs, zone)} (${zone}): ${actionLabel(next.action)}`
          : ""),
    );
  } finally {
    store.close();
  }
}

/** An instant as local date and time in the zone: `2026-12-01 06:30`. */
function formatInZone(wallMs: number, zone: string): string {
  const local = localTimeOf(zone, wallMs);
  const minutes = Math.floor(local.msOfDay / 60_000);
  const hhmm = `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
  return `${formatDate(local)} ${hhmm}`;
}

/**
 * A first Ctrl-C (or the end of --duration) ends every interval through its clearances; a second
 * Ctrl-C cuts that short.
 */
function stopSignals(nodes: readonly GatewayNode[], say: (line: string) => void) {
  let requestStop: () => void = () => {};
  const stopped = new Promise<void>((done) => {
    requestStop = done;
  });
  let signals = 0;
  const onStopSignal = () => {
    signals++;
    if (signals === 1) return requestStop();
    say("cutting the clearances: the modules' safe state takes the lamps now");
    for (const node of nodes) void node.stop("cut");
  };
  process.on("SIGINT", onStopSignal);
  process.on("SIGTERM", onStopSignal);
  return { stopped, requestStop };
}

/** One gateway of the demo, on the embedded broker, its store under the demo's data directory. */
async function startDemoGateway(
  setup: IntersectionSetup,
  index: number,
  where: { dataDir: string; brokerUrl: string; httpPort: number; width: number; clock: Clock },
  stores: ReturnType<typeof openStore>[],
  log: Logger,
  display: (setup: IntersectionSetup, name: string, node: () => GatewayNode | null) => Display,
): Promise<GatewayNode> {
  const intersection = setup.intersection.intersection;
  const name = intersection.id.padEnd(where.width);
  const store = openStore(where.dataDir, intersection.id);
  stores.push(store);
  let node: GatewayNode | null = null;
  node = await GatewayNode.start({
    setup,
    store,
    clock: where.clock,
    log: log.child({ intersection: intersection.id }),
    broker: { url: where.brokerUrl },
    http: { host: "127.0.0.1", port: where.httpPort === 0 ? 0 : where.httpPort + index },
    display: display(setup, name, () => node),
  }).catch((error: unknown) =>
    explainPortInUse(error, `${intersection.id}'s HTTP endpoint`, "--http-port (0: any free port)"),
  );
  process.stdout.write(`  ${name} metrics ${node.httpUrl}/metrics  health ${node.httpUrl}/healthz\n`);
  return node;
}

/** Random arrivals at the detector inputs of one module: vehicles at `perHour`, button presses at a quarter of it. */
function arrivalsAt(setup: IntersectionSetup, deviceId: string, perHour: number): ArrivalSpec[] {
  const detectors = setup.intersection.intersection.detectors ?? [];
  return setup.intersection.detectorWiring
    .filter((w) => w.deviceId === deviceId)
    .map((w) => {
      const kind = detectors[w.detector]?.kind ?? "vehicle";
      return { channel: w.input, ratePerHour: kind === "vehicle" ? perHour : perHour / 4, kind };
    });
}

/** One simulated Modbus TCP module per module of the corridor; returns where each one's state is seen. */
async function simulateModules(
  setups: readonly IntersectionSetup[],
  simulators: RunningSimulator[],
  log: Logger,
  arrivalsPerHour: number | null,
): Promise<{ controls: string[]; models: Map<string, LiveModules["modules"][number][]> }> {
  const controls: string[] = [];
  const models = new Map<string, LiveModules["modules"][number][]>();
  for (const setup of setups) {
    for (const module of setup.intersection.modules) {
      if (module.link.kind !== "tcp") {
        log.warn(
          { device: module.deviceId },
          "the demo simulates Modbus TCP modules only; this one stays unsimulated",
        );
        continue;
      }
      const sim = await startSimulator({
        profile: module.profile,
        unitId: module.unitId,
        host: module.link.host,
        tcpPort: module.link.port,
        controlPort: 0,
        ...(arrivalsPerHour === null
          ? {}
          : {
              arrivals: {
                specs: arrivalsAt(setup, module.deviceId, arrivalsPerHour),
                seed: simulators.length + 1,
              },
            }),
      }).catch((error: unknown) =>
        explainPortInUse(
          error,
          `the simulated module ${module.deviceId}`,
          "the device's link in its intersection file (is a demo already running?)",
        ),
      );
      simulators.push(sim);
      const id = setup.intersection.intersection.id;
      models.set(id, [...(models.get(id) ?? []), { layout: module, model: sim.model }]);
      controls.push(
        `${setup.intersection.intersection.id}/${module.deviceId} http://127.0.0.1:${sim.controlPort}/state`,
      );
    }
  }
  return { controls, models };
}
