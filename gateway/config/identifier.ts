import { z } from "zod";

/**
 * Identifiers of config files and their parts (groups, stages, plans, day plans). A module of its own
 * so that every file kind's schema can use it without importing the registry of kinds (schema.ts).
 */

const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Names every JavaScript object already answers to (`constructor`, `toString`, `valueOf`, …). Ids
 * are keys: of a plan's parts, of the permissive matrix, of a device's channels, here and in every
 * tool that reads these files or our messages, where `parts["valueOf"]` is a function rather than a
 * missing part. Our own lookups are safe; refusing the names keeps everyone else's safe too.
 * (`__proto__` and the other `__…__` names already fail the pattern.)
 */
export const RESERVED_IDS: ReadonlySet<string> = new Set(
  Object.getOwnPropertyNames(Object.prototype).filter((name) => IDENTIFIER.test(name)),
);

/** The offending value in a message, cut short: it may be anything a file or a message holds. */
export const quoted = (input: unknown) => JSON.stringify(String(input).slice(0, 70));

export const identifier = z
  .string()
  .regex(IDENTIFIER, {
    error: (issue) =>
      `${quoted(issue.input)}: must be 1–64 letters, digits, '-' or '_', starting with a letter or digit`,
  })
  .refine((id) => !RESERVED_IDS.has(id), {
    error: (issue) =>
      `${quoted(issue.input)} is reserved (every JavaScript object has a member of that name): choose another id`,
  });
