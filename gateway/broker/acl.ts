import { TOPIC_ROOT } from "../protocol/topics.js";

/** Who a broker user is; the ACL follows from it. */
export type Principal =
  | {
      readonly role: "gateway";
      readonly username: string;
      readonly corridor: string;
      readonly intersection: string;
    }
  | { readonly role: "operator"; readonly username: string }
  /** A broker run without a users file (the demo, on loopback): everyone may do everything. */
  | { readonly role: "open" };

/** The largest payload the broker forwards: a plan is a few kB, a command a few hundred bytes. */
export const MAX_BROKER_PAYLOAD_BYTES = 256 * 1024;

const ROOT_LEVELS = TOPIC_ROOT.split("/");

function levels(topic: string): string[] {
  return topic.split("/");
}

/** True when the topic is under greenwave/v1/<corridor>/<intersection>/…, and returns its levels. */
function underRoot(parts: readonly string[]): boolean {
  return ROOT_LEVELS.every((level, i) => parts[i] === level);
}

/**
 * May this principal publish to this topic? A gateway only under its own intersection's branch and
 * never a command; an operator only commands under its own login and its own decision records. Corridor-protocol
 * messages go to any party's inbox with the sender's own name as the topic's last level. Nothing is
 * published outside greenwave's tree.
 */
export function mayPublish(principal: Principal, topic: string): boolean {
  if (principal.role === "open") return true;
  const parts = levels(topic);
  if (!underRoot(parts) || parts.some((p) => p === "+" || p === "#" || p === "")) return false;
  const [corridor, branch, kind, last, sender] = parts.slice(ROOT_LEVELS.length);
  const depth = parts.length - ROOT_LEVELS.length;
  // Corridor protocol: anyone may write to anyone's inbox, but only under its own name as sender.
  const me = principal.role === "operator" ? `@${principal.username}` : principal.intersection;
  if (kind === "inbox" && depth === 4)
    return last === me && (principal.role === "operator" || corridor === principal.corridor);
  // An operator's command carries its login as the topic's last level (`…/cmd/NAME/@alice`): the
  // gateway records it as who sent the command, so it must be the operator's own.
  if (principal.role === "operator")
    return (
      (kind === "cmd" && depth === 5 && sender === me) ||
      (branch === me && kind === "decisions" && depth === 4)
    );
  return (
    corridor === principal.corridor &&
    branch === principal.intersection &&
    kind !== undefined &&
    kind !== "cmd"
  );
}

/**
 * May a message to this topic be retained? Never a command or a corridor inbox message: those are
 * acts of now, and a retained one would be replayed to the gateway on every (re)subscription.
 */
export function mayRetain(topic: string): boolean {
  const parts = levels(topic);
  if (!underRoot(parts)) return true;
  const kind = parts[ROOT_LEVELS.length + 2];
  return kind !== "cmd" && kind !== "inbox";
}

/** May this principal subscribe to this filter? A gateway within its corridor; an operator anywhere in the tree. */
export function maySubscribe(principal: Principal, filter: string): boolean {
  if (principal.role === "open") return true;
  const parts = levels(filter);
  if (!underRoot(parts)) return false;
  if (principal.role === "operator") return true;
  const corridor = parts[ROOT_LEVELS.length];
  return corridor === principal.corridor && parts.length > ROOT_LEVELS.length + 1;
}
