/**
 * A broken invariant inside the signal core. The controller turns it into a latched fault
 * (all-red flash) that names the invariant, instead of letting the process run on in an unknown state.
 */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantViolation(typeof message === "function" ? message() : message);
  }
}
