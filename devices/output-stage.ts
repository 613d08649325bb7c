import type { Intersection, Lamps } from "../gateway/core/model.js";
import {
  coilsFor,
  type DetectorWiring,
  detectorInputs,
  type Link,
  type ModuleLayout,
  observedLamps,
  safeStateRegisters,
} from "./io-map.js";
import { ModbusError } from "./modbus/errors.js";
import { type BusLink, describeLink, openLink } from "./modbus/link.js";
import { ModuleClient } from "./modbus/module-client.js";

export interface LostDevice {
  readonly device: string;
  readonly detail: string;
}

export interface ExchangeResult {
  /** The lamps every module reported back, or null when a module failed or has no feedback. */
  readonly observed: Lamps[] | null;
  /**
   * The detector inputs, by detector index, from the same read as the lamp feedback: null for a
   * detector whose module gave no reading this time (its diagnostics fail it after a while).
   */
  readonly detectorInputs: (boolean | null)[];
  /** Modules that have not had a good exchange for longer than their fault window. */
  readonly lost: LostDevice[];
  readonly errors: ModbusError[];
  /** Each module's share of the exchange (its write and readback), in milliseconds, by device id. */
  readonly durationsMs: ReadonlyMap<string, number>;
}

interface ModuleSlot {
  readonly layout: ModuleLayout;
  readonly client: ModuleClient;
  lastGoodMonoMs: number;
  lastError: ModbusError | null;
  /** Exchanges ended by an invalid answer since the last good one, and the last: is this a Modbus device at all? */
  invalidAnswers: number;
  lastInvalid: ModbusError | null;
  /** What the module's coils were last written to (FC05 boards write only what changed). */
  lastCoils: boolean[] | null;
  watchdogConfigured: boolean;
}

/**
 * The intersection's output stage: each tick, the commanded lamps are written (one FC15 per module,
 * or FC05 per changed coil where the profile says so) and read back (discrete inputs or coils). Links
 * are shared by every module on the same bus, each with one request queue.
 */
export class OutputStage {
  private readonly links = new Map<string, BusLink>();
  private readonly slots: ModuleSlot[];

  constructor(
    private readonly intersection: Intersection,
    readonly layouts: readonly ModuleLayout[],
    private readonly monoNow: () => number,
    private readonly detectorWiring: readonly DetectorWiring[] = [],
  ) {
    const start = monoNow();
    this.slots = layouts.map((layout) => {
      const key = describeLink(layout.link);
      let link = this.links.get(key);
      if (!link) {
        link = openLink(layout.link);
        this.links.set(key, link);
      }
      return {
        layout,
        client: new ModuleClient(link, layout.deviceId, layout.unitId, layout.timeoutMs, layout.retries),
        lastGoodMonoMs: start,
        lastError: null,
        invalidAnswers: 0,
        lastInvalid: null,
        lastCoils: null,
        watchdogConfigured: false,
      };
    });
  }

  get modules(): readonly { readonly layout: ModuleLayout; readonly client: ModuleClient }[] {
    return this.slots;
  }

  /**
   * Opens every link. A link that cannot open now keeps retrying in the background; what is returned
   * says, per link that failed, why (a missing device, a denied one, nothing listening).
   */
  async open(): Promise<string[]> {
    const failures = await Promise.all(
      [...this.links.values()].map((link) =>
        link.open().then(
          () => null,
          () => link.downReason,
        ),
      ),
    );
    return failures.filter((reason): reason is string => reason !== null);
  }

  /**
   * On a clean stop: every module to its safe state (vehicle red, DON'T WALK), best effort. A module
   * without a host watchdog would otherwise keep its last outputs.
   */
  async writeSafeState(): Promise<ModbusError[]> {
    const results = await Promise.all(
      this.slots.map((slot) =>
        slot.client.writeCoils(slot.layout.profile.firstCoil, [...slot.layout.safeState]).then(
          () => null,
          (error: unknown) => (error instanceof ModbusError ? error : null),
        ),
      ),
    );
    return results.filter((r): r is ModbusError => r !== null);
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => link.close()));
  }

  /**
   * What the lamps show now, read without writing anything: at start-up, a module may still hold the
   * lamps of a gateway process that died (until its watchdog fires). Null when any module cannot say.
   */
  async observe(): Promise<Lamps[] | null> {
    if (this.slots.length === 0) return null;
    const feedback = await Promise.all(
      this.slots.map(async ({ layout, client }) => {
        const fb = layout.profile.feedback;
        try {
          if (fb.source === "discrete-inputs") return await client.readInputs(fb.firstInput, fb.count);
          if (fb.source === "coils")
            return await client.readCoils(layout.profile.firstCoil, layout.profile.outputs);
          return null;
        } catch {
          return null;
        }
      }),
    );
    return feedback.every((f) => f !== null)
      ? observedLamps(this.intersection, this.layouts, feedback)
      : null;
  }

  async exchange(lamps: readonly Lamps[]): Promise<ExchangeResult> {
    const now = this.monoNow();
    const durationsMs = new Map<string, number>();
    const results = await Promise.all(
      this.slots.map(async (slot) => {
        const started = this.monoNow();
        const result = await this.exchangeWith(slot, lamps);
        durationsMs.set(slot.layout.deviceId, this.monoNow() - started);
        return result;
      }),
    );
    const errors = results.filter((r): r is ModbusError => r instanceof ModbusError);
    const lost: LostDevice[] = [];
    for (const slot of this.slots) {
      const silentMs = now - slot.lastGoodMonoMs;
      if (slot.lastError && silentMs > slot.layout.faultWindowMs)
        lost.push({ device: slot.layout.deviceId, detail: lostDetail(slot, silentMs) });
    }
    const feedback = results.map((r) => (r instanceof ModbusError ? null : r));
    // No module, no feedback: an intersection without devices has nothing to compare. A failed
    // exchange (an invalid answer included) gives no feedback at all: garbage never reaches the monitor.
    const complete = this.slots.length > 0 && errors.length === 0 && feedback.every((f) => f !== null);
    return {
      observed: complete ? observedLamps(this.intersection, this.layouts, feedback) : null,
      detectorInputs: detectorInputs(
        this.intersection.detectors?.length ?? 0,
        this.detectorWiring,
        this.layouts,
        feedback,
      ),
      lost,
      errors,
      durationsMs,
    };
  }

  private async exchangeWith(
    slot: ModuleSlot,
    lamps: readonly Lamps[],
  ): Promise<boolean[] | null | ModbusError> {
    const { layout, client } = slot;
    const profile = layout.profile;
    try {
      if (!slot.watchdogConfigured) await this.configureWatchdog(slot);
      const coils = coilsFor(layout, lamps);
      if (profile.writeFunction === "fc15") {
        await client.writeCoils(profile.firstCoil, coils);
      } else {
        for (let n = 0; n < coils.length; n++) {
          if (slot.lastCoils?.[n] !== coils[n])
            await client.writeCoil(profile.firstCoil + n, coils[n] as boolean);
        }
      }
      slot.lastCoils = coils;
      let sensed: boolean[] | null = null;
      const fb = profile.feedback;
      if (fb.source === "discrete-inputs") sensed = await client.readInputs(fb.firstInput, fb.count);
      else if (fb.source === "coils") sensed = await client.readCoils(profile.firstCoil, profile.outputs);
      slot.lastGoodMonoMs = this.monoNow();
      slot.lastError = null;
      slot.invalidAnswers = 0;
      slot.lastInvalid = null;
      return sensed;
    } catch (error) {
      const failure =
        error instanceof ModbusError
          ? error
          : new ModbusError("protocol", client.where, "exchange", String(error));
      slot.lastError = failure;
      if (failure.failure === "invalid-answer") {
        slot.invalidAnswers++;
        slot.lastInvalid = failure;
      }
      slot.lastCoils = null;
      // The module may have restarted: configure its watchdog again before the next write.
      slot.watchdogConfigured = false;
      return failure;
    }
  }

  /**
   * A module with a host watchdog gets its safe state (vehicle red and DON'T WALK on) and then the
   * timeout, so that a dead gateway can never freeze a green. Redone after every failure.
   */
  private async configureWatchdog(slot: ModuleSlot): Promise<void> {
    const w = slot.layout.profile.watchdog;
    if (w) {
      await writeWatchdogRegister(
        slot,
        w.safeStateRegister,
        "safeStateRegister",
        safeStateRegisters(slot.layout),
      );
      const units = Math.max(1, Math.round(slot.layout.watchdogMs / w.timeoutUnitMs));
      await writeWatchdogRegister(slot, w.timeoutRegister, "timeoutRegister", [units]);
    }
    slot.watchdogConfigured = true;
  }
}

/**
 * Exchanges in a row ended by an invalid answer, at least this many: whatever answers is not the
 * Modbus module of the configuration (one could be a glitch on a TCP-to-RTU bridge; two in a row are not).
 */
export const INVALID_ANSWERS_NOT_A_DEVICE = 2;

/** Why a module counts as lost, blaming the device and its link, never the lamps. */
/**
 * A module that refuses the profile's watchdog registers with an exception is not the module the
 * profile describes: said with the register and the profile, not as a module that stopped answering.
 */
async function writeWatchdogRegister(
  slot: ModuleSlot,
  register: number,
  name: string,
  values: number[],
): Promise<void> {
  try {
    await slot.client.writeRegisters(register, values);
  } catch (error) {
    if (!(error instanceof ModbusError) || error.failure !== "exception") throw error;
    const profile = slot.layout.profile.id;
    throw new ModbusError(
      "exception",
      error.where,
      error.operation,
      `rejects the watchdog register ${register} (watchdog.${name} of profile ${profile}) with exception ${error.exceptionCode ?? "?"}: this module is not a ${profile}; pick the profile that matches it in the intersection file (greenwave doctor checks it)`,
      error.exceptionCode,
    );
  }
}

function lostDetail(slot: ModuleSlot, silentMs: number): string {
  const window = `no good exchange for ${Math.round(silentMs)} ms (fault window ${slot.layout.faultWindowMs} ms)`;
  const invalid = slot.lastInvalid;
  if (invalid && slot.invalidAnswers >= INVALID_ANSWERS_NOT_A_DEVICE) {
    const { deviceId, link } = slot.layout;
    return `device ${deviceId} at ${linkAddress(link, slot.layout.unitId)} is not a Modbus device (answer to ${invalid.operation} ${invalid.detail}; ${slot.invalidAnswers} exchanges in a row refused): ${linkAdvice(link)}; ${window}`;
  }
  return `${window}; last error: ${slot.lastError?.message ?? "none"}`;
}

function linkAddress(link: Link, unitId: number): string {
  return link.kind === "tcp" ? `${link.host}:${link.port}` : `${link.path} unit ${unitId}`;
}

function linkAdvice(link: Link): string {
  return link.kind === "tcp"
    ? "check the host:port and unit id"
    : "check the serial path, its line settings and the unit id (does the adapter echo what it sends?)";
}
