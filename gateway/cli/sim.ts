import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import {
  ArrivalSpecError,
  MAX_RATE_PER_HOUR,
  parseArrivalSpec,
} from "../../simulators/io-module/arrivals.js";
import { inputChannels } from "../../simulators/io-module/module-model.js";
import { startSimulator } from "../../simulators/io-module/simulator.js";
import { loadDeviceProfile } from "../config/load.js";
import { explainPortInUse } from "./port-in-use.js";
import { registerSimTraffic } from "./sim-traffic.js";
import { UsageError } from "./usage-error.js";

/** The default simulated module: the generic 32-channel DO/DI profile shipped in config/devices. */
export const DEFAULT_PROFILE = fileURLToPath(
  new URL("../../../config/devices/generic-do32-di32.yaml", import.meta.url),
);

interface SimOptions {
  profile: string;
  tcp?: string;
  serial?: string;
  host: string;
  unit?: string;
  control?: string;
  rejectRegister?: string;
  arrivals?: string[];
  seed: string;
}

/** Repeated --arrivals are collected, to be refused with a clear word (one SPEC holds every group). */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function integer(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

export function registerSimCommands(program: Command): void {
  const sim = program.command("sim").description("hardware and traffic simulators");
  registerSimTraffic(sim);
  sim
    .command("io-module")
    .description(
      "a simulated Modbus I/O module (slave) over TCP or a serial line, with lamps, a host watchdog and fault injection",
    )
    .option("--profile <file>", "device profile", DEFAULT_PROFILE)
    .option("--tcp <port>", "serve Modbus TCP on this port (0: any free port)")
    .option("--serial <path>", "serve Modbus RTU on this serial port (e.g. one end of a socat pty pair)")
    .option("--host <address>", "address to bind (TCP and the control API)", "127.0.0.1")
    .option("--unit <id>", "unit id (default: the profile's)")
    .option(
      "--control <port>",
      "serve the control API (GET /state, GET /history, PUT /faults, PUT /inputs) on this port (0: any)",
    )
    .option(
      "--reject-register <addresses>",
      "holding registers this module does not have (comma-separated, e.g. 256,258): answered with exception 02 ILLEGAL DATA ADDRESS, like a module of another make",
    )
    .option(
      "--arrivals <spec>",
      `vehicles and push-button presses at detector inputs, at random (Poisson): comma-separated input channels, each run closed by @RATE, the vehicles (or presses) per hour of each of those channels (up to ${MAX_RATE_PER_HOUR}); p after the rate makes them pedestrian push buttons. "16,17@300,20@60p": 300 vehicles an hour on each of inputs 16 and 17 (presence 0.3-1.2 s each), 60 presses an hour on 20 (0.2-0.5 s). Give it once, with every group in it. Use inputs no lamp feeds back on`,
      collect,
    )
    .option("--seed <n>", "seed of --arrivals: the same seed, the same traffic", "1")
    .action(async (options: SimOptions) => {
      if ((options.tcp === undefined) === (options.serial === undefined)) {
        throw new UsageError("give exactly one of --tcp PORT or --serial PATH");
      }
      if (options.arrivals !== undefined && options.arrivals.length > 1)
        throw new UsageError(
          `--arrivals given ${options.arrivals.length} times: give it once, with every group in one SPEC (e.g. 16,17@300,20@60p)`,
        );
      const seed = integer(options.seed, "--seed", 0, 2_147_483_647);
      const { profile } = loadDeviceProfile(options.profile);
      const arrivalsSpec = options.arrivals?.[0];
      let specs: ReturnType<typeof parseArrivalSpec> = [];
      try {
        if (arrivalsSpec !== undefined) specs = parseArrivalSpec(arrivalsSpec, inputChannels(profile));
      } catch (error) {
        if (error instanceof ArrivalSpecError)
          throw new UsageError(`--arrivals "${arrivalsSpec}": ${error.message}`);
        throw error;
      }
      // Handlers before anything listens: until a listener exists, SIGINT's default action kills the
      // process mid-start.
      const stop = new Promise<void>((done) => {
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      });
      const tcpPort = options.tcp === undefined ? undefined : integer(options.tcp, "--tcp", 0, 65_535);
      const running = await startSimulator({
        profile,
        unitId: options.unit === undefined ? profile.unitId : integer(options.unit, "--unit", 1, 247),
        host: options.host,
        ...(tcpPort === undefined ? {} : { tcpPort }),
        ...(options.serial === undefined ? {} : { serialPath: options.serial }),
        controlPort: options.control === undefined ? null : integer(options.control, "--control", 0, 65_535),
        rejectRegisters: (options.rejectRegister?.split(",") ?? []).map((a) =>
          integer(a.trim(), "--reject-register", 0, 65_535),
        ),
        ...(specs.length > 0 ? { arrivals: { specs, seed } } : {}),
      }).catch((error: NodeJS.ErrnoException & { port?: number }) =>
        error.port !== undefined && error.port === tcpPort
          ? explainPortInUse(error, "the simulated module's Modbus TCP server", "--tcp")
          : explainPortInUse(error, "the simulated module's control API", "--control"),
      );
      // One line a script can parse: where the module listens and where it is controlled.
      process.stdout.write(
        `${JSON.stringify({ event: "listening", profile: profile.id, modbus: running.description, modbusPort: running.modbusPort, control: running.controlPort === null ? null : `http://${options.host}:${running.controlPort}` })}\n`,
      );
      await stop;
      await running.stop();
    });
}
