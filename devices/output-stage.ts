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
  /**
   * Set when, before the first write after a start, a module's watchdog had dropped the lamps the start-up
   * decided from: what every module shows now (null: not all could be read), and why. Nothing was written
   * to that module. The controller decides the start-up again from it (the full start-up).
   */
  readonly fieldDropped: { readonly detail: string; readonly observed: Lamps[] | null } | null;
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
  /** When the module last acknowledged a write (coils or registers), or null: none yet. */
  lastWriteMonoMs: number | null;
  /** Why the module's watchdog dropped the lamps, found before this exchange wrote: reported as lost. */
  watchdogDrop: string | null;
  /** The same, found before the first write after a start: what the module shows now, and why. */
  startDrop: { readonly detail: string; readonly read: boolean[] } | null;
  /** What `observe()` read before the first write (checked again just before it), or null. */
  atStart: boolean[] | null;
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
        lastWriteMonoMs: null,
        watchdogDrop: null,
        startDrop: null,
        atStart: null,
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
      this.slots.map(async (slot) => {
        const read = await readBack(slot).catch(() => null);
        if (slot.lastWriteMonoMs === null) slot.atStart = read;
        return read;
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
      if (slot.watchdogDrop !== null) {
        lost.push({ device: slot.layout.deviceId, detail: slot.watchdogDrop });
        slot.watchdogDrop = null;
      } else if (slot.lastError && silentMs > slot.layout.faultWindowMs)
        lost.push({ device: slot.layout.deviceId, detail: lostDetail(slot, silentMs) });
    }
    const feedback = results.map((r) => (r instanceof ModbusError ? null : r));
    const startDrops = this.slots.filter((slot) => slot.startDrop !== null);
    let fieldDropped: ExchangeResult["fieldDropped"] = null;
    if (startDrops.length > 0) {
      const now = this.slots.map((slot, i) => slot.startDrop?.read ?? feedback[i] ?? null);
      fieldDropped = {
        detail: startDrops
          .map((slot) => `device ${slot.layout.deviceId}: ${slot.startDrop?.detail}`)
          .join("; "),
        observed: now.every((f) => f !== null) ? observedLamps(this.intersection, this.layouts, now) : null,
      };
      for (const slot of startDrops) slot.startDrop = null;
    }
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
      fieldDropped,
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
    // A module whose watchdog ran out since its last write has dropped the lamps to its safe state (a
    // green to red, with no yellow): writing the lamps again would bring a green back out of nowhere
    // ~100 ms later. Reported as lost instead (the controller latches a fault: flash), not written.
    const atStart = await droppedSinceStart(slot);
    if (atStart !== null) {
      // Nothing written yet in this run: the start-up is decided again from what the module shows now.
      slot.startDrop = atStart;
      slot.lastWriteMonoMs = null;
      slot.lastCoils = null;
      slot.watchdogConfigured = false;
      return null;
    }
    const drop = watchdogDrop(slot, this.monoNow());
    if (drop !== null) {
      slot.watchdogDrop = drop;
      slot.lastWriteMonoMs = null;
      slot.lastCoils = null;
      slot.watchdogConfigured = false;
      return null;
    }
    try {
      if (!slot.watchdogConfigured) await this.configureWatchdog(slot);
      const coils = coilsFor(layout, lamps);
      if (profile.writeFunction === "fc15") {
        await client.writeCoils(profile.firstCoil, coils);
        slot.lastWriteMonoMs = this.monoNow();
      } else {
        for (let n = 0; n < coils.length; n++) {
          if (slot.lastCoils?.[n] !== coils[n]) {
            await client.writeCoil(profile.firstCoil + n, coils[n] as boolean);
            slot.lastWriteMonoMs = this.monoNow();
          }
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
      slot.lastWriteMonoMs = this.monoNow();
    }
    slot.watchdogConfigured = true;
  }
}

/** What a module's feedback shows now (lamp current, or its coils); null when it has no feedback. */
async function readBack({ layout, client }: ModuleSlot): Promise<boolean[] | null> {
  const fb = layout.profile.feedback;
  if (fb.source === "discrete-inputs") return await client.readInputs(fb.firstInput, fb.count);
  if (fb.source === "coils") return await client.readCoils(layout.profile.firstCoil, layout.profile.outputs);
  return null;
}

/**
 * Before the first write after a start: has the module's watchdog dropped the lamps since `observe()`
 * read them (the core decided from that reading: a green it took over would come back out of nowhere)?
 * Read once more; the lamps in use gone from what was read to exactly the safe state is the watchdog's
 * doing. Once per start, for a module with a watchdog; a failed read is the exchange's to find.
 */
async function droppedSinceStart(
  slot: ModuleSlot,
): Promise<{ readonly detail: string; readonly read: boolean[] } | null> {
  const atStart = slot.atStart;
  slot.atStart = null;
  if (atStart === null || slot.layout.profile.watchdog === null) return null;
  const used = slot.layout.channels.flatMap((use, n) => (use ? [n] : []));
  const safe = (read: readonly boolean[]) =>
    used.every((n) => read[n] === (slot.layout.safeState[n] ?? false));
  // Nothing to drop: the lamps showed the safe state already.
  if (safe(atStart)) return null;
  const now = await readBack(slot).catch(() => null);
  if (now === null || !safe(now)) return null;
  return {
    detail: `its watchdog dropped the lamps to its safe state between the start-up readback and the first write (the restart came too close to the module's watchdog, ${String(effectiveWatchdogMs(slot.layout))} ms): the start-up is decided again from what it shows now`,
    read: now,
  };
}

/** The timeout a module's watchdog really runs with: `watchdogMs` in the profile's units (as written). */
export function effectiveWatchdogMs(layout: ModuleLayout): number | null {
  const w = layout.profile.watchdog;
  if (!w) return null;
  return Math.max(1, Math.round(layout.watchdogMs / w.timeoutUnitMs)) * w.timeoutUnitMs;
}

/**
 * Whether a module with a host watchdog has certainly dropped its lamps since its last acknowledged
 * write, and why, in words for the fault; null when it has not. The gap is measured from the write's
 * acknowledgement to the write about to go, which is never longer than the gap the module itself saw
 * (it received the last write before acknowledging it, and receives the next after it is sent): past
 * the watchdog here, the module's watchdog ran out too. A module without a watchdog holds its lamps.
 */
function watchdogDrop(slot: ModuleSlot, nowMonoMs: number): string | null {
  const watchdogMs = effectiveWatchdogMs(slot.layout);
  if (watchdogMs === null || slot.lastWriteMonoMs === null) return null;
  const gapMs = nowMonoMs - slot.lastWriteMonoMs;
  if (gapMs <= watchdogMs) return null;
  const error = slot.lastError ? ` (last error: ${slot.lastError.message})` : "";
  return `no write reached it for ${Math.round(gapMs)} ms${error}, longer than its watchdog (${watchdogMs} ms): it dropped the lamps to its safe state (a green went to red without its yellow); the gateway flashes the intersection rather than bring the lamps back out of nowhere. Find why the gateway stalled or could not write (machine load, swap, a blocked disk, the link to ${slot.layout.deviceId}), then reset the fault`;
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
