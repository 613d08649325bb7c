import { TOPIC_ROOT } from "./topics.js";

/** What a gateway may receive, by topic: the class of work it is and who sent it. */
export interface InboundRoute {
  readonly cls: "command" | "corridor" | "decision";
  /**
   * The sender as the topic names it: an inbox's last level (the broker's ACL lets a party publish
   * only under its own name), a decision record's coordinator branch. A command's sender is only a
   * claim in its payload, so all commands share one key.
   */
  readonly sender: string;
}

/**
 * Classifies a topic this gateway subscribed to (its commands, its inbox, the corridor's decision
 * records) by its levels alone, without looking at the payload; null for anything else.
 */
export function classifyInbound(topic: string, corridor: string, me: string): InboundRoute | null {
  const root = `${TOPIC_ROOT}/${corridor}/`;
  if (!topic.startsWith(root)) return null;
  const [branch, kind, last, ...rest] = topic.slice(root.length).split("/");
  if (!branch || !last) return null;
  // A command's fourth level, when there is one, is its sender's login (`@alice`): see commandSender.
  if (
    kind === "cmd" &&
    branch === me &&
    (rest.length === 0 || (rest.length === 1 && /^@.+/.test(rest[0] as string)))
  )
    return { cls: "command", sender: "operators" };
  if (rest.length > 0) return null;
  if (kind === "inbox" && branch === me) return { cls: "corridor", sender: last };
  if (kind === "decisions") return { cls: "decision", sender: branch };
  return null;
}

/**
 * A command topic's name and sender, after the intersection's `cmd/` prefix: `flash` (no sender:
 * an older tool, or an open broker) or `flash/@alice` (the sender's broker login, which a broker with
 * users lets an operator publish under only its own name).
 */
export function commandSender(rest: string): { readonly name: string; readonly operator: string | null } {
  const [name = "", sender] = rest.split("/", 2);
  return { name, operator: sender?.startsWith("@") ? sender.slice(1) : null };
}
