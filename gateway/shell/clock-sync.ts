import {
  type ClockSyncReading,
  fromChrony,
  fromKernel,
  fromTimedatectl,
  parseAdjtimexPrint,
  parseChronyTracking,
  parseTimedatectlShow,
  parseTimesyncStatus,
} from "../core/clock-sync.js";
import { type CommandRunner, execFileRunner, whyNoAnswer } from "./command-runner.js";

export type { ClockSyncReading, ClockSyncSource, ClockSyncState } from "../core/clock-sync.js";

/**
 * Reads whether the clock is synchronised, from the daemon that keeps it, without native code:
 *
 * 1. systemd-timesyncd (Debian's and Raspberry Pi OS's default): `timedatectl show` for timedated's
 *    NTPSynchronized, and, when a time-sync service is enabled, `timedatectl timesync-status` for the
 *    offset. If timesyncd answers, it is the daemon at work and its word is taken.
 * 2. chrony: `chronyc -c tracking`. When chronyd answers it is the daemon at work, and its own view
 *    wins over the kernel flag timedated reports: chrony without `rtcsync` leaves that flag unset, and
 *    after losing its sources chrony knows at once while the kernel's error estimate takes hours to grow.
 * 3. timedated's NTPSynchronized alone, when it answered but neither daemon did (another NTP daemon):
 *    it is the kernel's own state.
 * 4. The kernel's state without systemd: Node has no adjtimex(2) binding, and /proc does not show the
 *    timex status, so only the `adjtimex` tool (Debian package `adjtimex`, `--print`) reaches it.
 *    It is optional: where it is not installed the state is "unknown".
 *
 * Every command is bounded (2 s, 64 KiB: command-runner.ts), so a reading takes at most a few
 * seconds even when every daemon hangs; it never throws. Meant to be called about once a minute.
 */
export async function readClockSync(run: CommandRunner = execFileRunner()): Promise<ClockSyncReading> {
  const tried: string[] = [];

  const showRun = await run("timedatectl", ["show", "-p", "NTPSynchronized", "-p", "NTP"]);
  const show = showRun.code === 0 ? parseTimedatectlShow(showRun.stdout) : null;
  if (!show) tried.push(`timedatectl: ${unusable(showRun)}`);
  if (show && show.ntp !== false) {
    const statusRun = await run("timedatectl", ["timesync-status"]);
    const timesync = statusRun.code === 0 ? parseTimesyncStatus(statusRun.stdout) : null;
    if (timesync) return fromTimedatectl(show, timesync);
  }

  const chronyRun = await run("chronyc", ["-c", "tracking"]);
  const tracking = chronyRun.code === 0 ? parseChronyTracking(chronyRun.stdout) : null;
  if (tracking) return fromChrony(tracking);
  tried.push(`chronyc: ${unusable(chronyRun)}`);

  if (show) return fromTimedatectl(show, null);

  const kernelRun = await run("adjtimex", ["--print"]);
  const timex = kernelRun.code === 0 ? parseAdjtimexPrint(kernelRun.stdout) : null;
  if (timex) return fromKernel(timex);
  tried.push(`adjtimex: ${unusable(kernelRun)}`);

  return {
    state: "unknown",
    source: "none",
    offsetMs: null,
    detail: `no source answered (${tried.join("; ")})`,
  };
}

function unusable(result: Awaited<ReturnType<CommandRunner>>): string {
  return result.code === 0 ? "output not understood" : whyNoAnswer(result);
}
