import { type DestinationStream, pino } from "pino";

/**
 * Structured logs (JSON lines) to stdout, which journald keeps on a roadside gateway; or to another
 * destination (the demo's console turns each line into its own one-line human form).
 */
export function createLogger(
  name: string,
  level = process.env.GREENWAVE_LOG_LEVEL ?? "info",
  destination?: DestinationStream,
) {
  const options = { name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}

export type Logger = ReturnType<typeof createLogger>;
