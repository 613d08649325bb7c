import { TOPIC_ROOT } from "../protocol/topics.js";

/**
 * How fast one login may publish through the embedded broker. A publish within the rate (and its
 * burst) passes at once. Past it, a publish is held until its turn, and the broker reads nothing more
 * from that connection meanwhile: TCP pushes back on the sender, which slows to the rate and loses
 * nothing (a gateway's outbox after an outage: 16 in flight, paced). A publish that would have to wait
 * longer than `maxDelayMs` is dropped, counted, and from then on the login is *flooding*: whatever
 * finds no token is dropped at once (the broker keeps reading its stream at full speed, so a flood
 * costs the broker parsing, never memory or waiting), until its budget is whole again.
 *
 * Why drop rather than disconnect: MQTT 3.1.1 has no way to refuse one publish; a disconnect makes a
 * flooding client log in again (a scrypt check of ~45 ms of the broker's CPU each time, which a valid
 * credential is not rate limited on), and cuts a buggy gateway's status and replies with the flood.
 * A dropped QoS 1 publish has been acknowledged (the acknowledgement is written before the publish is
 * routed): the sender does not resend it. Only a sender far past the limit loses anything, and every
 * loss is counted and logged by login and topic class.
 */
export interface PublishLimits {
  /** Sustained PUBLISHes per second per login (per client id on an open broker). */
  readonly ratePerSecond: number;
  /** PUBLISHes at once above the rate before any is held. */
  readonly burst: number;
  /** The longest a publish is held for its turn; one that would wait longer is dropped. */
  readonly maxDelayMs: number;
}

/**
 * A gateway publishes about 1 a second on average (status at stage changes, its events, hires rows)
 * and 29 at most in one second (coordinating a plan push): measured over the demo corridor, 60 s with
 * two plan pushes (docs/protocol.md). The rate is over 3× that peak, the burst 1,000 (a reconnect
 * republishes what it owns and starts its outbox), and a held publish waits 1 s at most (an outbox
 * of 16 in flight waits 0.16 s at most).
 */
export const DEFAULT_PUBLISH_LIMITS: PublishLimits = { ratePerSecond: 100, burst: 1000, maxDelayMs: 1000 };

/** Logins remembered for their limits; past it the stalest is forgotten (it starts with a full budget). */
export const MAX_TRACKED_PUBLISHERS = 10_000;

/**
 * The generic cell rate algorithm: `tatMs` is when the login's next publish would be due at exactly
 * the rate (the budget is whole when it is not after now); `flooding` is set by a drop and cleared
 * when the budget is whole again.
 */
export interface PaceState {
  readonly tatMs: number;
  readonly flooding: boolean;
}

export type PaceVerdict =
  | { readonly kind: "pass" }
  /** Held this long, then passes. */
  | { readonly kind: "wait"; readonly waitMs: number }
  | { readonly kind: "drop" };

/** One publish of a login at `nowMs`: its verdict and the login's next state. Pure. */
export function pace(
  state: PaceState | undefined,
  nowMs: number,
  limits: PublishLimits,
): { readonly state: PaceState; readonly verdict: PaceVerdict } {
  const intervalMs = 1000 / limits.ratePerSecond;
  const toleranceMs = (limits.burst - 1) * intervalMs;
  const tatMs = Math.max(state?.tatMs ?? nowMs, nowMs);
  const flooding = (state?.flooding ?? false) && tatMs > nowMs;
  const waitMs = tatMs - nowMs - toleranceMs;
  if (waitMs <= 0) return { state: { tatMs: tatMs + intervalMs, flooding }, verdict: { kind: "pass" } };
  if (flooding || waitMs > limits.maxDelayMs)
    return { state: { tatMs, flooding: true }, verdict: { kind: "drop" } };
  return { state: { tatMs: tatMs + intervalMs, flooding }, verdict: { kind: "wait", waitMs } };
}

/** What a topic is, for the counters and the log: bounded to the protocol's kinds. */
export type TopicClass =
  "status" | "availability" | "events" | "hires" | "reply" | "inbox" | "cmd" | "decisions" | "other";

const ROOT_DEPTH = TOPIC_ROOT.split("/").length;
const KINDS = new Set<TopicClass>([
  "status",
  "availability",
  "events",
  "hires",
  "reply",
  "inbox",
  "cmd",
  "decisions",
]);

export function topicClass(topic: string): TopicClass {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return "other";
  const kind = topic.split("/")[ROOT_DEPTH + 2] as TopicClass | undefined;
  return kind !== undefined && KINDS.has(kind) ? kind : "other";
}

export interface PublisherCounts {
  passed: number;
  /** Held for their turn (then passed). */
  delayed: number;
  /** Dropped, by topic class. */
  dropped: Partial<Record<TopicClass, number>>;
}

/**
 * The broker's side of the limits: a state per login (bounded, least recently seen forgotten first)
 * and the counts per login. Time comes from `nowMs`, so a test can drive it.
 */
export class PublishPacer {
  private readonly states = new Map<string, PaceState>();
  /** Per login; bounded like the states (a forgotten login's counts go to "other logins"). */
  readonly counts = new Map<string, PublisherCounts>();

  constructor(
    readonly limits: PublishLimits,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    if (!(limits.ratePerSecond > 0) || !(limits.burst >= 1) || !(limits.maxDelayMs >= 0))
      throw new RangeError(`invalid publish limits ${JSON.stringify(limits)}`);
  }

  /** The verdict for one publish of `login` to `topic`, counted. */
  take(login: string, topic: string): PaceVerdict {
    const known = this.states.get(login);
    if (known) this.states.delete(login);
    else if (this.states.size >= MAX_TRACKED_PUBLISHERS) {
      const stalest = this.states.keys().next().value as string;
      this.states.delete(stalest);
      this.counts.delete(stalest);
    }
    const { state, verdict } = pace(known, this.nowMs(), this.limits);
    this.states.set(login, state);
    const counts = this.counts.get(login) ?? { passed: 0, delayed: 0, dropped: {} };
    this.counts.set(login, counts);
    if (verdict.kind === "drop") {
      const cls = topicClass(topic);
      counts.dropped[cls] = (counts.dropped[cls] ?? 0) + 1;
    } else {
      counts.passed++;
      if (verdict.kind === "wait") counts.delayed++;
    }
    return verdict;
  }
}
