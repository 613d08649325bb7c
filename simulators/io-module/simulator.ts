import type { ModuleProfile, SerialSettings } from "../../devices/io-map.js";
import { type ArrivalSpec, arrivalSpecsProblem, type RunningArrivals, startArrivals } from "./arrivals.js";
import { startControl } from "./control.js";
import { startRtuSlave, startTcpSlave } from "./modbus-slave.js";
import { inputChannels, ModuleModel } from "./module-model.js";

export interface SimulatorOptions {
  readonly profile: ModuleProfile;
  readonly unitId: number;
  readonly host: string;
  readonly tcpPort?: number;
  readonly serialPath?: string;
  readonly serial?: SerialSettings;
  /** Control API port (0: any free port), or null for none. */
  readonly controlPort: number | null;
  /** Holding registers this module does not have: answered with exception 02 (register-refusal.ts). */
  readonly rejectRegisters?: readonly number[];
  /** Vehicles and push-button presses at detector inputs (arrivals.ts), from the start; absent: none. */
  readonly arrivals?: { readonly specs: readonly ArrivalSpec[]; readonly seed: number };
}

export interface RunningSimulator {
  readonly model: ModuleModel;
  readonly description: string;
  readonly modbusPort: number | null;
  readonly controlPort: number | null;
  /** The arrival process driving detector inputs, when one was asked for. */
  readonly arrivals: RunningArrivals | null;
  stop(): Promise<void>;
}

/** How often the simulated module checks its host watchdog. */
const WATCHDOG_POLL_MS = 20;

const clock = { monoMs: () => performance.now(), wallMs: () => Date.now() };

/** Starts a simulated I/O module: the Modbus slave, its watchdog and (optionally) its control API. */
export async function startSimulator(options: SimulatorOptions): Promise<RunningSimulator> {
  const model = new ModuleModel(options.profile, clock.wallMs());
  // Checked before anything listens: bad specs throw a RangeError and leave nothing open.
  const problem = !options.arrivals
    ? null
    : !Number.isInteger(options.arrivals.seed)
      ? `seed ${options.arrivals.seed} is not a whole number`
      : arrivalSpecsProblem(options.arrivals.specs, inputChannels(options.profile));
  if (problem !== null) throw new RangeError(`arrivals: ${problem}`);
  const rejected = new Set(options.rejectRegisters ?? []);
  const slave =
    options.serialPath !== undefined
      ? await startRtuSlave(
          model,
          options.unitId,
          options.serialPath,
          options.serial ?? options.profile.serial,
          clock,
          rejected,
        )
      : await startTcpSlave(model, options.unitId, options.host, options.tcpPort ?? 502, clock, rejected);
  const arrivals =
    options.arrivals && options.arrivals.specs.length > 0
      ? startArrivals(model, options.arrivals.specs, { seed: options.arrivals.seed, monoNow: clock.monoMs })
      : null;
  const watchdog = setInterval(() => model.tick(clock.monoMs(), clock.wallMs()), WATCHDOG_POLL_MS);
  let control: Awaited<ReturnType<typeof startControl>> | null = null;
  try {
    if (options.controlPort !== null)
      control = await startControl(model, options.unitId, options.host, options.controlPort, arrivals);
  } catch (error) {
    // A simulator that could not start whole leaves nothing open (it would keep its process alive).
    clearInterval(watchdog);
    arrivals?.stop();
    await slave.close();
    throw error;
  }
  return {
    model,
    description: slave.description,
    modbusPort: slave.port,
    controlPort: control?.port ?? null,
    arrivals,
    async stop() {
      clearInterval(watchdog);
      arrivals?.stop();
      await Promise.all([slave.close(), control?.close()]);
    },
  };
}
