/**
 * The MQTT topic tree (docs/protocol.md). Everything a gateway publishes lives under its own
 * intersection's branch, so that a broker ACL can confine it there; commands come in under `cmd/`,
 * which only operators may publish to.
 */

export const PROTOCOL_VERSION = 1;
export const TOPIC_ROOT = `greenwave/v${PROTOCOL_VERSION}`;

/** Commands a gateway accepts from operators. */
export const COMMANDS = [
  "fault-reset",
  "flash",
  "status",
  "txn-resolve",
  "plan-push",
  "audit",
  "events",
  "hold",
  "lamp-test",
] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface IntersectionTopics {
  readonly availability: string;
  readonly status: string;
  readonly events: string;
  /** The high-resolution signal event log (Indiana enumerations), live: docs/event-log.md. */
  readonly hires: string;
  readonly reply: string;
  /** A command without its sender's level (older operators' tools; an open broker). */
  readonly commandFilter: string;
  /** A command whose last level is `@<the sender's broker login>` (the broker's ACL enforces it). */
  readonly signedCommandFilter: string;
  /** The topic of a command; with `operator`, under that operator's login name (`…/cmd/NAME/@alice`). */
  command(name: CommandName, operator?: string): string;
}

export function intersectionTopics(corridor: string, intersection: string): IntersectionTopics {
  const base = `${TOPIC_ROOT}/${corridor}/${intersection}`;
  return {
    availability: `${base}/availability`,
    status: `${base}/status`,
    events: `${base}/events`,
    hires: `${base}/hires`,
    reply: `${base}/reply`,
    commandFilter: `${base}/cmd/+`,
    signedCommandFilter: `${base}/cmd/+/+`,
    command: (name, operator) => `${base}/cmd/${name}${operator === undefined ? "" : `/@${operator}`}`,
  };
}

export type ParsedTopic =
  | {
      readonly corridor: string;
      readonly intersection: string;
      readonly kind: "availability" | "status" | "events" | "hires" | "reply";
    }
  | {
      readonly corridor: string;
      readonly intersection: string;
      readonly kind: "cmd";
      readonly command: string;
    };

/** Reads a topic of the tree, or returns null for anything else. */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split("/");
  if (parts.length < 5 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) return null;
  const [, , corridor, intersection, kind, command, ...rest] = parts;
  if (!corridor || !intersection || rest.length > 0) return null;
  if (kind === "cmd") return command ? { corridor, intersection, kind, command } : null;
  if (command !== undefined) return null;
  if (
    kind === "availability" ||
    kind === "status" ||
    kind === "events" ||
    kind === "hires" ||
    kind === "reply"
  )
    return { corridor, intersection, kind };
  return null;
}
