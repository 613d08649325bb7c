import { type ClockSyncReading, formatOffsetMs } from "../core/clock-sync.js";
import { type CheckResult, fail, pass, warn } from "./check-result.js";

/**
 * An offset past this is worth a warning even on a synchronised clock: the corridor's green wave is
 * timed to the tick (100 ms) from a daily reference, and half a second is where drivers meet a red
 * that should have been green. A daemon that is synchronised over a LAN keeps it to milliseconds; a
 * large value means it is still slewing after a step, or its source is far away.
 */
export const OFFSET_WARN_MS = 500;

const HOW_TO_SYNC =
  "enable time sync (timedatectl set-ntp true; with chrony: systemctl enable --now chrony), then check its sources (chronyc sources, or timedatectl timesync-status) and that UDP port 123 reaches them";

/** The clock as the gateway itself reads it (gateway/shell/clock-sync.ts). */
export function checkClock(reading: ClockSyncReading): CheckResult {
  switch (reading.state) {
    case "synchronised": {
      const offset = reading.offsetMs;
      if (offset !== null && Math.abs(offset) > OFFSET_WARN_MS)
        return warn(
          "clock",
          `synchronised, but the estimated offset is ${formatOffsetMs(offset)} (over ${OFFSET_WARN_MS} ms): ${reading.detail}`,
          "wait for the daemon to slew it in; if it stays, check its sources (chronyc sources, timedatectl timesync-status)",
        );
      return pass("clock", `synchronised: ${reading.detail}`);
    }
    case "unsynchronised":
      return fail(
        "clock",
        reading.source === "adjtimex"
          ? `not synchronised: ${reading.detail}; no time service answered, and the kernel says its clock is not disciplined: the green wave needs every cabinet's clock (the gateway reports it; it votes no only on a time service's word)`
          : `not synchronised: ${reading.detail}; the green wave needs every cabinet's clock, and a gateway votes no on corridor plan changes while its own is unsynchronised`,
        HOW_TO_SYNC,
      );
    default:
      return warn(
        "clock",
        `synchronisation unknown: ${reading.detail}`,
        `install or start a time daemon: ${HOW_TO_SYNC}`,
      );
  }
}
