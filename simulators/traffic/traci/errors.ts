/**
 * Why a TraCI exchange failed:
 * - `refused`: SUMO answered the command with an error or "not implemented" status (an unknown id, a
 *   state string of the wrong length);
 * - `malformed`: a message that does not follow the protocol (truncated, a wrong type tag, a reply for
 *   another command), in either direction;
 * - `too-large`: a message over the size bound;
 * - `timeout`: no complete reply within the command's timeout;
 * - `connection`: no connection, or it broke (SUMO exited, was killed, or closed it);
 * - `invalid`: refused by the client before sending, because SUMO would take it silently and do
 *   something else (a traffic-light state of the wrong length).
 */
export type TraciErrorKind = "refused" | "malformed" | "too-large" | "timeout" | "connection" | "invalid";

export interface TraciErrorDetails {
  readonly kind: TraciErrorKind;
  /** The command's name as this client calls it, e.g. "trafficLightSetState". */
  readonly command: string;
  /** The SUMO object the command named (a traffic light, a loop), when it named one. */
  readonly objectId?: string;
}

/** A TraCI command that did not do what it asked: says which command, on which object, and why. */
export class TraciError extends Error {
  readonly kind: TraciErrorKind;
  readonly command: string;
  readonly objectId: string | undefined;

  constructor(message: string, details: TraciErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TraciError";
    this.kind = details.kind;
    this.command = details.command;
    this.objectId = details.objectId;
  }
}

/** "trafficLightSetState on 'j1'" or "simulationStep": how messages name a command. */
export function describeCommand(command: string, objectId?: string): string {
  return objectId === undefined ? command : `${command} on '${objectId}'`;
}
