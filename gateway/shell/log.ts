import { pino } from "pino";

/** Structured logs (JSON lines) to stdout, which journald keeps on a roadside gateway. */
export function createLogger(name: string, level = process.env.GREENWAVE_LOG_LEVEL ?? "info") {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type Logger = ReturnType<typeof createLogger>;
