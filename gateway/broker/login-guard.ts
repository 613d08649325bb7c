import { randomBytes } from "node:crypto";
import { type BucketLimits, type TokenBucket, takeToken } from "../core/token-bucket.js";
import { hashPassword, verifyPassword } from "./users.js";

/**
 * Login attempts one client address may have in progress or failed: a burst of 10, then 2 a second
 * (a gateway needs one; a success gives its token back).
 */
export const LOGIN_LIMITS_PER_ADDRESS: BucketLimits = { ratePerSecond: 2, burst: 10 };
/**
 * Login attempts against one user name (known or not, so a refusal tells nothing about which names
 * exist) in progress or failed, from any address: a burst of 30, then 2 a second; a success gives its
 * token back. Against a flood from many addresses (a botnet, or 240 loopback addresses in the test),
 * which the per-address limit alone does not hold back.
 */
export const LOGIN_LIMITS_PER_USER: BucketLimits = { ratePerSecond: 2, burst: 30 };
/** Password checks at once (scrypt takes ~45 ms of a core, and these machines have 2). */
export const MAX_CHECKS_IN_FLIGHT = 2;
/** Attempts waiting for a check; past it an attempt is refused at once ("server unavailable"), counted. */
export const MAX_CHECKS_WAITING = 64;
/**
 * Attempts waiting from known-good logins (a user name and an address that logged in successfully
 * before): a queue of their own, checked first and exempt from the per-user and per-address limits,
 * so no flood from elsewhere locks a gateway out of reconnecting. A failure forgets the pair.
 */
export const MAX_KNOWN_GOOD_WAITING = 16;
/** Client addresses, user names and known-good pairs remembered; past it the stalest is forgotten. */
export const MAX_TRACKED_ADDRESSES = 10_000;

export type LoginVerdict = "accepted" | "refused" | "rate-limited" | "busy" | "abandoned";

export interface LoginCounters {
  /** Refused by the per-address limit. */
  rateLimited: number;
  /** Refused by the per-user limit. */
  userLimited: number;
  busy: number;
  abandoned: number;
  /** Attempts that took the known-good queue. */
  knownGood: number;
}

interface Waiting {
  readonly run: () => Promise<void>;
}

/**
 * What a password login costs the broker, and an attacker: every attempt does the same work whether
 * the user exists or not (a known hash for an unknown name), so the time of a refusal does not tell
 * names apart; each client address and each user name is rate limited; password checks run a few at
 * a time from a bounded queue, and one whose connection has gone is skipped, not computed. Logins
 * that succeeded before from the same address (a gateway reconnecting from its cabinet) wait in a
 * queue of their own, served first: a flood of failures from elsewhere does not lock them out.
 */
export class LoginGuard {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly userBuckets = new Map<string, TokenBucket>();
  /** `user \0 address` of successful logins, most recent last. */
  private readonly knownGood = new Set<string>();
  private inFlight = 0;
  private readonly waiting: Waiting[] = [];
  private readonly waitingKnown: Waiting[] = [];
  private decoy: Promise<string> | null = null;
  readonly counters: LoginCounters = { rateLimited: 0, userLimited: 0, busy: 0, abandoned: 0, knownGood: 0 };

  constructor(private readonly nowMs: () => number = () => performance.now()) {}

  /**
   * Checks `password` against `hash` (null: no such user: a decoy hash is checked instead, and the
   * answer is no). `username` is the name the client gave (the per-user limit's key, known or not);
   * `gone()` says whether the client has disconnected meanwhile.
   */
  check(
    address: string,
    username: string | undefined,
    hash: string | null,
    password: Buffer | undefined,
    gone: () => boolean,
  ): Promise<LoginVerdict> {
    const user = username ?? "";
    const pair = `${user}\u0000${address}`;
    const known = this.knownGood.has(pair);
    if (!known && !this.admit(this.buckets, address, LOGIN_LIMITS_PER_ADDRESS)) {
      this.counters.rateLimited++;
      return Promise.resolve("rate-limited");
    }
    if (!known && !this.admit(this.userBuckets, user, LOGIN_LIMITS_PER_USER)) {
      this.counters.userLimited++;
      return Promise.resolve("rate-limited");
    }
    const queue = known ? this.waitingKnown : this.waiting;
    const room = known ? MAX_KNOWN_GOOD_WAITING : MAX_CHECKS_WAITING;
    if (this.inFlight >= MAX_CHECKS_IN_FLIGHT && queue.length >= room) {
      this.counters.busy++;
      return Promise.resolve("busy");
    }
    if (known) this.counters.knownGood++;
    return new Promise<LoginVerdict>((resolve) => {
      const run = async () => {
        if (gone()) {
          this.counters.abandoned++;
          resolve("abandoned");
          return;
        }
        const against = hash ?? (await this.decoyHash());
        const ok = await verifyPassword(password ?? Buffer.alloc(0), against).catch(() => false);
        const accepted = ok && hash !== null && password !== undefined;
        if (accepted) {
          this.refund(this.buckets, address, LOGIN_LIMITS_PER_ADDRESS);
          this.refund(this.userBuckets, user, LOGIN_LIMITS_PER_USER);
          this.remember(pair);
        } else this.knownGood.delete(pair);
        resolve(accepted ? "accepted" : "refused");
      };
      queue.push({ run });
      this.pump();
    });
  }

  private remember(pair: string): void {
    this.knownGood.delete(pair);
    this.knownGood.add(pair);
    if (this.knownGood.size > MAX_TRACKED_ADDRESSES) {
      const stalest = this.knownGood.values().next().value;
      if (stalest !== undefined) this.knownGood.delete(stalest);
    }
  }

  private pump(): void {
    while (this.inFlight < MAX_CHECKS_IN_FLIGHT) {
      const next = this.waitingKnown.shift() ?? this.waiting.shift();
      if (!next) return;
      this.inFlight++;
      void next.run().finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private admit(buckets: Map<string, TokenBucket>, key: string, limits: BucketLimits): boolean {
    const now = this.nowMs();
    const { bucket, admitted } = takeToken(buckets.get(key), now, limits);
    buckets.delete(key);
    buckets.set(key, bucket);
    if (buckets.size > MAX_TRACKED_ADDRESSES) {
      const stalest = buckets.keys().next().value;
      if (stalest !== undefined) buckets.delete(stalest);
    }
    return admitted;
  }

  /**
   * A login that succeeded gives its token back: only failures use up an address's (and a user's)
   * budget, so the gateways of a whole site behind one NAT reconnect after a broker restart as fast
   * as they check.
   */
  private refund(buckets: Map<string, TokenBucket>, key: string, limits: BucketLimits): void {
    const bucket = buckets.get(key);
    if (bucket) buckets.set(key, { ...bucket, tokens: Math.min(limits.burst, bucket.tokens + 1) });
  }

  /** A hash with the users file's parameters, of a password nobody knows: made once, on first need. */
  private decoyHash(): Promise<string> {
    this.decoy ??= hashPassword(randomBytes(24).toString("base64"));
    return this.decoy;
  }
}
