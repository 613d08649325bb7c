import { displayPath } from "../config/errors.js";
import type { Link, ModuleLayout } from "../../devices/io-map.js";
import { ModbusError } from "../../devices/modbus/errors.js";
import { type BusLink, describeLink, openLink } from "../../devices/modbus/link.js";
import { ModuleClient } from "../../devices/modbus/module-client.js";
import { type CheckResult, fail, pass, warn } from "./check-result.js";

/** Modbus exception codes (Modbus Application Protocol v1.1b3, 7), by the names the spec gives them. */
const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: "ILLEGAL FUNCTION",
  2: "ILLEGAL DATA ADDRESS",
  3: "ILLEGAL DATA VALUE",
  4: "SERVER DEVICE FAILURE",
  5: "ACKNOWLEDGE",
  6: "SERVER DEVICE BUSY",
  8: "MEMORY PARITY ERROR",
  10: "GATEWAY PATH UNAVAILABLE",
  11: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
};

/** Per request and per connection attempt: a module answers in milliseconds, a dead one never. */
export const MODULE_TIMEOUT_MS = 2000;

export interface ModuleCheckOptions {
  /** The intersection file, named in what to do. */
  readonly configFile: string;
  readonly timeoutMs?: number;
}

/** One read the doctor makes; `name` is what the message calls it. */
interface Read {
  readonly name: string;
  readonly watchdogField?: string;
  readonly register?: number;
  run(client: ModuleClient): Promise<number[] | boolean[]>;
}

/**
 * Each module answers, read only (the doctor writes nothing, so a running gateway's lamps are never
 * touched): the coils the profile drives, its feedback inputs, then the profile's watchdog registers.
 * Modules on one bus share one link, as in the gateway. Every request and connection is bounded.
 */
export async function checkModules(
  modules: readonly ModuleLayout[],
  options: ModuleCheckOptions,
): Promise<CheckResult[]> {
  const timeoutMs = options.timeoutMs ?? MODULE_TIMEOUT_MS;
  const links = new Map<string, { link: BusLink; opened: Promise<unknown> }>();
  for (const layout of modules) {
    const key = describeLink(layout.link);
    if (links.has(key)) continue;
    const link = openLink(layout.link);
    links.set(key, {
      link,
      opened: withTimeout(link.open(), timeoutMs).then(
        () => null,
        (e: unknown) => e,
      ),
    });
  }
  try {
    return await Promise.all(
      modules.map(async (layout) => {
        const { link, opened } = links.get(describeLink(layout.link)) as {
          link: BusLink;
          opened: Promise<unknown>;
        };
        const openError = await opened;
        if (openError !== null) return linkProblem(layout, openError, options.configFile, timeoutMs);
        return checkModule(
          layout,
          new ModuleClient(link, layout.deviceId, layout.unitId, timeoutMs, 1),
          options,
          timeoutMs,
        );
      }),
    );
  } finally {
    // close() also stops the background reopening a failed open starts.
    await Promise.all([...links.values()].map(({ link }) => link.close()));
  }
}

async function checkModule(
  layout: ModuleLayout,
  client: ModuleClient,
  options: ModuleCheckOptions,
  timeoutMs: number,
): Promise<CheckResult> {
  const { profile } = layout;
  const read: string[] = [];
  let watchdogNow: string | null = null;
  for (const step of readsOf(layout)) {
    try {
      const values = await step.run(client);
      read.push(step.name);
      if (step.watchdogField === "watchdog.timeoutRegister" && profile.watchdog) {
        const units = Number(values[0] ?? 0);
        watchdogNow = units === 0 ? "off" : `${units * profile.watchdog.timeoutUnitMs} ms`;
      }
    } catch (error) {
      if (!(error instanceof ModbusError)) throw error;
      return requestProblem(layout, step, error, options, timeoutMs);
    }
  }
  const watchdog = profile.watchdog
    ? `; its host watchdog is ${watchdogNow ?? "unknown"} now`
    : `; profile ${profile.id} has no host watchdog`;
  return pass(`module ${layout.deviceId}`, `${where(layout)} answers: ${read.join(", ")} read${watchdog}`);
}

function readsOf(layout: ModuleLayout): Read[] {
  const { profile } = layout;
  const reads: Read[] = [
    {
      name: `coils ${range(profile.firstCoil, profile.outputs)}`,
      run: (c) => c.readCoils(profile.firstCoil, profile.outputs),
    },
  ];
  const fb = profile.feedback;
  if (fb.source === "discrete-inputs")
    reads.push({
      name: `inputs ${range(fb.firstInput, fb.count)}`,
      run: (c) => c.readInputs(fb.firstInput, fb.count),
    });
  const w = profile.watchdog;
  if (w) {
    const safeCount = Math.ceil(profile.outputs / 16);
    reads.push({
      name: `watchdog register ${w.timeoutRegister}`,
      watchdogField: "watchdog.timeoutRegister",
      register: w.timeoutRegister,
      run: (c) => c.readRegisters(w.timeoutRegister, 1),
    });
    reads.push({
      name: `watchdog register${safeCount > 1 ? "s" : ""} ${range(w.safeStateRegister, safeCount)}`,
      watchdogField: "watchdog.safeStateRegister",
      register: w.safeStateRegister,
      run: (c) => c.readRegisters(w.safeStateRegister, safeCount),
    });
  }
  return reads;
}

/** What a failed read says about the module, and what to do. */
function requestProblem(
  layout: ModuleLayout,
  step: Read,
  error: ModbusError,
  options: ModuleCheckOptions,
  timeoutMs: number,
): CheckResult {
  const check = `module ${layout.deviceId}`;
  const config = displayPath(options.configFile);
  const profile = layout.profile.id;
  switch (error.failure) {
    case "exception": {
      const code = error.exceptionCode ?? 0;
      const exception = `exception ${code} ${EXCEPTION_NAMES[code] ?? "(not a standard code)"}`;
      if ((code === 10 || code === 11) && layout.link.kind === "tcp")
        return fail(
          check,
          `(${where(layout)}) the Modbus TCP gateway answers ${exception}: it cannot reach unit ${layout.unitId} behind it`,
          `check the gateway's serial side: the cable to the module, its unit id (${layout.unitId}) and its line settings`,
        );
      const what = step.watchdogField
        ? `the watchdog register ${step.register} (${step.watchdogField})`
        : step.name;
      return fail(
        check,
        `(${where(layout)}) rejects ${what} with ${exception}`,
        `this module is not a ${profile}; pick the profile that matches it in ${config}`,
      );
    }
    case "timeout":
      return fail(
        check,
        `(${where(layout)}) does not answer: no answer to ${error.operation} within ${timeoutMs} ms`,
        silenceAdvice(layout, config),
      );
    case "crc":
      return fail(
        check,
        `(${where(layout)}) answers fail their CRC check`,
        `the module's line settings differ from ${lineSettings(layout.link)}, or the line is noisy (termination, A/B swapped?); set them in ${config} or on the module`,
      );
    case "invalid-answer":
      return fail(
        check,
        `(${where(layout)}) something answers, but not as a Modbus module: ${error.message}`,
        `check that ${address(layout.link)} in ${config} is this module's address`,
      );
    default:
      return fail(check, `(${where(layout)}) ${error.message}`, silenceAdvice(layout, config));
  }
}

/** A link that could not be opened: refused, timed out, a missing or locked serial port. */
function linkProblem(
  layout: ModuleLayout,
  error: unknown,
  configFile: string,
  timeoutMs: number,
): CheckResult {
  const check = `module ${layout.deviceId}`;
  const config = displayPath(configFile);
  const link = layout.link;
  const code = (error as NodeJS.ErrnoException).code;
  const message = (error as Error).message ?? String(error);
  if (link.kind === "tcp") {
    if (code === "ECONNREFUSED")
      return fail(
        check,
        `(${where(layout)}) nothing listens at ${address(link)} (connection refused)`,
        `check the module's address in ${config}, that it is powered and serves Modbus TCP on port ${link.port}`,
      );
    if (error instanceof TimeoutError)
      return fail(
        check,
        `(${where(layout)}) no connection to ${address(link)} within ${timeoutMs} ms`,
        `check the network cable and path to ${link.host}, the address in ${config} and the module's power`,
      );
    return fail(
      check,
      `(${where(layout)}) cannot connect to ${address(link)}: ${message}`,
      `check the address in ${config}`,
    );
  }
  if (/cannot lock port|resource temporarily unavailable/i.test(message))
    return warn(
      check,
      `(${where(layout)}) ${link.path} is in use by another process (the running gateway?); not checked`,
      "stop it (systemctl stop greenwave) to check the module from here; meanwhile the gateway's status says whether it answers",
    );
  if (/no such file/i.test(message) || code === "ENOENT")
    return fail(
      check,
      `(${where(layout)}) the serial port ${link.path} does not exist`,
      `check that the RS-485 adapter is plugged in (ls -l /dev/serial/by-id/) and the path in ${config}`,
    );
  if (/permission denied/i.test(message) || code === "EACCES")
    return fail(
      check,
      `(${where(layout)}) permission denied on ${link.path}`,
      "the greenwave user must be in the dialout group (the package puts it there); run the doctor as root or as greenwave",
    );
  return fail(
    check,
    `(${where(layout)}) cannot open ${link.path}: ${message}`,
    `check the adapter and the path in ${config}`,
  );
}

function silenceAdvice(layout: ModuleLayout, config: string): string {
  return layout.link.kind === "tcp"
    ? `check the module's power and network, and its unit id (${layout.unitId} in ${config})`
    : `check the cable (A/B, termination) and the module's power, its unit id (${layout.unitId}) and line settings (${lineSettings(layout.link)}) in ${config}`;
}

function where(layout: ModuleLayout): string {
  return `unit ${layout.unitId}, profile ${layout.profile.id}, ${describeLink(layout.link)}`;
}

function address(link: Link): string {
  return link.kind === "tcp" ? `${link.host}:${link.port}` : link.path;
}

function lineSettings(link: Link): string {
  if (link.kind === "tcp") return "";
  const s = link.serial;
  return `${s.baudRate} ${s.dataBits}${s.parity[0]?.toUpperCase()}${s.stopBits}`;
}

function range(first: number, count: number): string {
  return count === 1 ? `${first}` : `${first}–${first + count - 1}`;
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
