import type { Intersection } from "../core/model.js";

/**
 * The longest output tick an intersection can run on. The controller advances, writes the lamps and
 * reads them back once per tick, so the conflict monitor sees the field only at ticks: every window
 * it times, and every flash it checks, is sampled at the tick. A tick too long for them makes the
 * monitor both slow and wrong:
 *
 * - a monitor window W (conflict, red fail, feedback mismatch) is timed from the first tick that sees
 *   the condition to the first tick at least W later, so a condition that starts just after a tick is
 *   latched up to W + 2 ticks after it starts. With at least 3 ticks per window, that is within 5/3 of
 *   the window (a 300 ms conflict window latches within 500 ms), instead of the 2.3 s a 1000 ms tick
 *   gives;
 * - flashing lamps (malfunction and scheduled flash, flashing DON'T WALK) are dark half of each flash
 *   period, and the readback of a dark half is a dark lamp. A tick that can step over a whole lit half
 *   strings the dark halves of consecutive flashes together, and after the red-fail window the monitor
 *   latches a red fail on healthy lamps: `--tick-ms 1000` at 55 flashes/min did so within 15 s. With 2
 *   ticks per half, every lit half is read back even when a tick starts up to half a tick late;
 * - a module's host watchdog falls to its safe state when no write comes for `watchdogMs`, and a module
 *   is lost after `faultWindowMs` with no good exchange: with 3 ticks per window, a late tick or one
 *   failed exchange neither trips the watchdog between healthy writes nor loses the module.
 *
 * Pure: the command line refuses a tick length against the intersection before opening anything.
 */

/** Ticks that must fit in each monitor window (conflict, red fail, mismatch). */
export const MIN_TICKS_PER_MONITOR_WINDOW = 3;
/** Ticks that must fit in each half of the flash period. */
export const MIN_TICKS_PER_FLASH_HALF = 2;
/** Ticks that must fit in a module's host watchdog timeout and in its fault window. */
export const MIN_TICKS_PER_DEVICE_WINDOW = 3;

/** What a module contributes: its windows, and whether it has a host watchdog at all. */
export interface TickedDevice {
  readonly deviceId: string;
  readonly watchdogMs: number;
  readonly faultWindowMs: number;
  readonly profile: { readonly watchdog: unknown };
}

export interface TickLimit {
  /** The longest tick this limit allows, ms. */
  readonly maxTickMs: number;
  /** What sets it, with its configured value: "its conflict window (monitor.conflictMs 300 ms)". */
  readonly window: string;
  /** How many ticks it must span: "which must span at least 3 ticks". */
  readonly span: string;
  /** What a longer tick would do, given that tick. */
  readonly why: (tickMs: number) => string;
}

/** Every limit the intersection and its modules put on the tick, tightest first. */
export function tickLimits(intersection: Intersection, devices: readonly TickedDevice[] = []): TickLimit[] {
  const { conflictMs, redFailMs, mismatchMs } = intersection.monitor;
  const halfMs = Math.floor(intersection.flashPeriodMs / 2);
  const flashesPerMinute = Math.round(60_000 / intersection.flashPeriodMs);
  const limits: TickLimit[] = [
    monitorLimit(`its conflict window (monitor.conflictMs ${conflictMs} ms)`, conflictMs, "conflicting greens"),
    monitorLimit(`its red-fail window (monitor.redFailMs ${redFailMs} ms)`, redFailMs, "a dark signal head"),
    monitorLimit(
      `its feedback-mismatch window (monitor.mismatchMs ${mismatchMs} ms)`,
      mismatchMs,
      "lamps that differ from the command",
    ),
    {
      maxTickMs: Math.floor(halfMs / MIN_TICKS_PER_FLASH_HALF),
      window: `its flash (${flashesPerMinute} flashes/min: ${halfMs} ms lit, then dark)`,
      span: `each half of which must span at least ${MIN_TICKS_PER_FLASH_HALF} ticks`,
      why: (tickMs) =>
        `the lamps are read back once per tick, and a ${tickMs} ms tick can step over a whole lit half, so the dark halves of consecutive flashes run together into a false red fail on healthy lamps`,
    },
  ];
  for (const device of devices) {
    if (device.profile.watchdog !== null)
      limits.push(
        deviceLimit(
          `the host watchdog of ${device.deviceId} (watchdogMs ${device.watchdogMs} ms)`,
          device.watchdogMs,
          "one late tick would let the module fall to its safe state between two healthy writes",
        ),
      );
    limits.push(
      deviceLimit(
        `the fault window of ${device.deviceId} (faultWindowMs ${device.faultWindowMs} ms)`,
        device.faultWindowMs,
        "one failed exchange would lose the module, with no second try",
      ),
    );
  }
  return limits.sort((a, b) => a.maxTickMs - b.maxTickMs);
}

/** The tightest limit: the longest tick the intersection supports, and what sets it. */
export function longestTick(intersection: Intersection, devices: readonly TickedDevice[] = []): TickLimit {
  return tickLimits(intersection, devices)[0] as TickLimit;
}

/**
 * Null when the intersection (and its modules) can run on `tickMs`; otherwise why not, naming the
 * tightest limit, its window, what a longer tick would do, and every other limit the tick exceeds.
 * `subject` opens the message ("--tick-ms 1000").
 */
export function checkTickMs(
  tickMs: number,
  intersection: Intersection,
  devices: readonly TickedDevice[] = [],
  subject = `a tick of ${tickMs} ms`,
): string | null {
  const exceeded = tickLimits(intersection, devices).filter((limit) => tickMs > limit.maxTickMs);
  const [tightest, ...others] = exceeded;
  if (!tightest) return null;
  const also =
    others.length === 0
      ? ""
      : `; it also exceeds ${others.map((l) => `${l.window} (at most ${l.maxTickMs} ms)`).join(", ")}`;
  return `${subject} is too long for intersection ${intersection.id}: at most ${tightest.maxTickMs} ms, set by ${tightest.window}, ${tightest.span}: ${tightest.why(tickMs)}${also}`;
}

function monitorLimit(window: string, windowMs: number, condition: string): TickLimit {
  return {
    maxTickMs: Math.floor(windowMs / MIN_TICKS_PER_MONITOR_WINDOW),
    window,
    span: `which must span at least ${MIN_TICKS_PER_MONITOR_WINDOW} ticks`,
    why: (tickMs) =>
      `the monitor sees the lamps once per tick, so with ${tickMs} ms ticks ${condition} could stand for up to ${windowMs + 2 * tickMs} ms before the fault latches`,
  };
}

function deviceLimit(window: string, windowMs: number, consequence: string): TickLimit {
  return {
    maxTickMs: Math.floor(windowMs / MIN_TICKS_PER_DEVICE_WINDOW),
    window,
    span: `which must span at least ${MIN_TICKS_PER_DEVICE_WINDOW} ticks`,
    why: (tickMs) => `with ${tickMs} ms ticks ${consequence}`,
  };
}
