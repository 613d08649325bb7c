import { fileURLToPath } from "node:url";
import type { Command } from "commander";
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
      "serve the control API (GET /state, GET /history, PUT /faults) on this port (0: any)",
    )
    .option(
      "--reject-register <addresses>",
      "holding registers this module does not have (comma-separated, e.g. 256,258): answered with exception 02 ILLEGAL DATA ADDRESS, like a module of another make",
    )
    .action(async (options: SimOptions) => {
      if ((options.tcp === undefined) === (options.serial === undefined)) {
        throw new UsageError("give exactly one of --tcp PORT or --serial PATH");
      }
      // Handlers first: until a listener exists, SIGINT's default action kills the process mid-start.
      const stop = new Promise<void>((done) => {
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      });
      const { profile } = loadDeviceProfile(options.profile);
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
