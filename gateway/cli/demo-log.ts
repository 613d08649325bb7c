import { type DestinationStream, pino } from "pino";

/**
 * The demo's console is one timeline: its lamp and signal lines, and its gateways' log lines in the
 * same form — the seconds since the start, the intersection, then what happened. pino writes each
 * entry as a JSON line (what journald keeps on a gateway); here each becomes one human line.
 *
 * Not pino-pretty, though it is well kept: the layout is the demo's own (its time stamp, its
 * intersection column), which pino-pretty reaches only through a messageFormat function that would be
 * this formatter; it prints an error's stack over several lines even in singleLine mode; and it would
 * add its dependencies to every gateway's package for the demo alone.
 */

/** Fields every entry has, shown by the layout itself or not at all. */
const LAYOUT_FIELDS = new Set(["level", "time", "pid", "hostname", "name", "msg", "intersection"]);

export function humanLogLine(json: string, stamp: string, nameWidth: number): string {
  let entry: unknown;
  try {
    entry = JSON.parse(json);
  } catch {
    return `${stamp} ${oneLine(json)}`;
  }
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return `${stamp} ${oneLine(json)}`;
  const fields = entry as Record<string, unknown>;
  const who = typeof fields.intersection === "string" ? fields.intersection : "demo";
  const level = typeof fields.level === "number" ? (pino.levels.labels[fields.level] ?? "log") : "log";
  const details = Object.entries(fields)
    .filter(([key]) => !LAYOUT_FIELDS.has(key))
    .map(([key, value]) => `${key}=${describeValue(value)}`)
    .join(" ");
  const message = oneLine(typeof fields.msg === "string" ? fields.msg : "");
  return `${stamp} ${who.padEnd(nameWidth)} ${level.toUpperCase().padEnd(5)} ${message}${details ? `  [${details}]` : ""}`;
}

/** A value on one line: words as they are, anything else as JSON (which escapes line breaks). */
function describeValue(value: unknown): string {
  if (typeof value === "string" && /^[\w.:/@+-]+$/.test(value)) return value;
  return JSON.stringify(value) ?? String(value);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trimEnd();
}

/** A pino destination that prints each entry through `humanLogLine`. */
export function humanLogDestination(
  print: (line: string) => void,
  stamp: () => string,
  nameWidth: number,
): DestinationStream {
  return {
    write(chunk: string) {
      for (const json of chunk.split("\n")) if (json.trim()) print(humanLogLine(json, stamp(), nameWidth));
    },
  };
}
