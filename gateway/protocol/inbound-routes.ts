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
  if (rest.length > 0 || !branch || !last) return null;
  if (kind === "cmd" && branch === me) return { cls: "command", sender: "operators" };
  if (kind === "inbox" && branch === me) return { cls: "corridor", sender: last };
  if (kind === "decisions") return { cls: "decision", sender: branch };
  return null;
}
