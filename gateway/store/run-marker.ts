import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "./pid-file.js";

/** Beside the store: which process runs the gateway on it, so that offline tools refuse to touch it. */
export const RUN_MARKER_FILE = "gateway.pid";

interface RunMarker {
  readonly pid: number;
  /** The process's start time (/proc/PID/stat, field 22): a reused pid is another process. */
  readonly startTicks: string | null;
}

/** Linux's start time of a process in clock ticks since boot, or null (no /proc, or gone). */
function startTicksOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function alive(marker: RunMarker): boolean {
  if (marker.startTicks !== null) return startTicksOf(marker.pid) === marker.startTicks;
  return processAlive(marker.pid);
}

/** The pid of a gateway running on the store in `dir`, or null (no marker, or its process is gone). */
export function runningGateway(dir: string): number | null {
  let marker: RunMarker;
  try {
    const parsed = JSON.parse(readFileSync(join(dir, RUN_MARKER_FILE), "utf8")) as Partial<RunMarker>;
    if (!Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) return null;
    marker = {
      pid: parsed.pid as number,
      startTicks: typeof parsed.startTicks === "string" ? parsed.startTicks : null,
    };
  } catch {
    return null;
  }
  return alive(marker) ? marker.pid : null;
}

/** Marks the store as run by this process; returns the function that removes the mark (at exit). */
export function markRunning(dir: string): () => void {
  const file = join(dir, RUN_MARKER_FILE);
  writeFileSync(file, JSON.stringify({ pid: process.pid, startTicks: startTicksOf(process.pid) }));
  return () => rmSync(file, { force: true });
}
