import { readFileSync } from "node:fs";

/**
 * The unit's EnvironmentFile (/etc/greenwave/gateway.env), read as systemd reads it for the direct
 * service manager: `KEY=value` lines, `#` and `;` comments, values optionally in single or double
 * quotes. (systemd also joins lines ending in a backslash and expands escapes: the example file uses
 * neither, and a line that needs them is taken literally.)
 */
export function readEnvFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const value = match[2] as string;
    const quoted = /^(["'])(.*)\1$/.exec(value);
    env[match[1] as string] = quoted ? (quoted[2] as string) : value;
  }
  return env;
}

/** `$GREENWAVE_ARGS` in ExecStart: systemd splits an unbraced variable at whitespace. */
export function splitArgs(value: string | undefined): string[] {
  return (value ?? "").split(/\s+/).filter((word) => word.length > 0);
}
