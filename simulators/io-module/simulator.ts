import type { ModuleProfile, SerialSettings } from "../../devices/io-map.js";
import { startControl } from "./control.js";
import { startRtuSlave, startTcpSlave } from "./modbus-slave.js";
import { ModuleModel } from "./module-model.js";

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
}

export interface RunningSimulator {
  readonly model: ModuleModel;
  readonly description: string;
  readonly modbusPort: number | null;
  readonly controlPort: number | null;
  stop(): Promise<void>;
}

/** How often the simulated module checks its host watchdog. */
const WATCHDOG_POLL_MS = 20;

const clock = { monoMs: () => performance.now(), wallMs: () => Date.now() };

/** Starts a simulated I/O module: the Modbus slave, its watchdog and (optionally) its control API. */
export async function startSimulator(options: SimulatorOptions): Promise<RunningSimulator> {
  const model = new ModuleModel(options.profile, clock.wallMs());
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
  const watchdog = setInterval(() => model.tick(clock.monoMs(), clock.wallMs()), WATCHDOG_POLL_MS);
  let control: Awaited<ReturnType<typeof startControl>> | null = null;
  try {
    if (options.controlPort !== null)
      control = await startControl(model, options.unitId, options.host, options.controlPort);
  } catch (error) {
    // A simulator that could not start whole leaves nothing open (it would keep its process alive).
    clearInterval(watchdog);
    await slave.close();
    throw error;
  }
  return {
    model,
    description: slave.description,
    modbusPort: slave.port,
    controlPort: control?.port ?? null,
    async stop() {
      clearInterval(watchdog);
      await Promise.all([slave.close(), control?.close()]);
    },
  };
}
