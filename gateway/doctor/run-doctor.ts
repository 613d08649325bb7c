import type { ClockSyncReading } from "../core/clock-sync.js";
import { readClockSync } from "../shell/clock-sync.js";
import { type CommandRunner, execFileRunner } from "../shell/command-runner.js";
import { type BrokerConfig, checkBroker } from "./broker-check.js";
import type { CheckResult } from "./check-result.js";
import { warn } from "./check-result.js";
import { checkClock } from "./clock-check.js";
import { checkConfig } from "./config-check.js";
import { checkDisk, type DiskThresholds } from "./disk-check.js";
import { checkModules } from "./modules-check.js";
import { checkService } from "./service-check.js";
import { checkStores } from "./store-check.js";

export interface DoctorOptions {
  readonly configFile: string;
  readonly dataDir: string;
  readonly broker: BrokerConfig;
  /** The seams, for tests; the defaults are the real ones. */
  readonly run?: CommandRunner;
  readonly readClock?: () => Promise<ClockSyncReading>;
  readonly moduleTimeoutMs?: number;
  readonly brokerTimeoutMs?: number;
  readonly disk?: DiskThresholds;
}

/**
 * Every check, in the order a technician reads them: the configuration, each module, the broker, the
 * clock, the disk, each store, the service. The checks that wait on the network or on other processes
 * run at once (each bounded: 2 s per Modbus request, 5 s for the broker, 2 s per command), so the whole
 * takes a few seconds even when everything is dead.
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const run = options.run ?? execFileRunner();
  const config = checkConfig(options.configFile);
  const setup = config.setup;
  const modules = setup
    ? setup.intersection.modules.length > 0
      ? checkModules(setup.intersection.modules, {
          configFile: options.configFile,
          ...(options.moduleTimeoutMs !== undefined ? { timeoutMs: options.moduleTimeoutMs } : {}),
        })
      : Promise.resolve([
          warn("modules", "the intersection has no I/O modules: the gateway drives no lamps", null),
        ])
    : Promise.resolve([
        warn("modules", "not checked: the intersection file is not valid", "fix the configuration first"),
      ]);
  const [moduleResults, broker, clock, service] = await Promise.all([
    modules,
    checkBroker(options.broker, options.brokerTimeoutMs),
    (options.readClock ?? (() => readClockSync(run)))().then(checkClock),
    checkService(run),
  ]);
  const disk = checkDisk(options.dataDir, options.disk);
  const stores = checkStores(options.dataDir, setup?.intersection.intersection.id ?? null);
  return [config.result, ...moduleResults, broker, clock, disk, ...stores, service];
}
