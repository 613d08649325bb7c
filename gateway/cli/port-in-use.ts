/**
 * A port another program holds is the user's problem, not a bug: say which port, which option
 * changes it, and exit 1 — never a stack trace (exit 70).
 */
export class PortInUseError extends Error {
  override name = "PortInUseError";
}

/** Rethrows EADDRINUSE as a PortInUseError naming the address and the option; anything else unchanged. */
export function explainPortInUse(error: unknown, what: string, option: string): never {
  const e = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.code !== "EADDRINUSE") throw error;
  const where = e.port !== undefined ? `${e.address ?? "the address"}:${e.port}` : "its port";
  throw new PortInUseError(
    `${what} cannot listen on ${where}: the port is in use (another greenwave, a demo, or another program): stop it, or choose another port with ${option}`,
  );
}
