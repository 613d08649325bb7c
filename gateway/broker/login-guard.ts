import { randomBytes } from "node:crypto";
import { type BucketLimits, type TokenBucket, takeToken } from "../core/token-bucket.js";
import { hashPassword, verifyPassword } from "./users.js";

/**
 * Login attempts one client address may have in progress or failed: a burst of 10, then 2 a second
 * (a gateway needs one; a success gives its token back).
 */
export const LOGIN_LIMITS_PER_ADDRESS: BucketLimits = { ratePerSecond: 2, burst: 10 };
/** Password checks at once (scrypt takes ~45 ms of a core, and these machines have 2). */
export const MAX_CHECKS_IN_FLIGHT = 2;
/** Attempts waiting for a check; past it an attempt is refused at once ("server unavailable"), counted. */
export const MAX_CHECKS_WAITING = 64;
/** Client addresses remembered for their limits; past it the stalest is forgotten. */
export const MAX_TRACKED_ADDRESSES = 10_000;

export type LoginVerdict = "accepted" | "refused" | "rate-limited" | "busy" | "abandoned";

export interface LoginCounters {
  rateLimited: number;
  busy: number;
  abandoned: number;
}

interface Waiting {
  readonly run: () => Promise<void>;
}

/**
 * What a password login costs the broker, and an attacker: every attempt does the same work whether
 * the user exists or not (a known hash for an unknown name), so the time of a refusal does not tell
 * names apart; each client address is rate limited; password checks run a few at a time from a
 * bounded queue, and one whose connection has gone is skipped, not computed.
 */
export class LoginGuard {
  private readonly buckets = new Map<string, TokenBucket>();
  private inFlight = 0;
  private readonly waiting: Waiting[] = [];
  private decoy: Promise<string> | null = null;
  readonly counters: LoginCounters = { rateLimited: 0, busy: 0, abandoned: 0 };

  constructor(private readonly nowMs: () => number = () => performance.now()) {}

  /**
   * Checks `password` against `hash` (null: no such user: a decoy hash is checked instead, and the
   * answer is no). `gone()` says whether the client has disconnected meanwhile.
   */
  check(
    address: string,
    hash: string | null,
    password: Buffer | undefined,
    gone: () => boolean,
  ): Promise<LoginVerdict> {
    if (!this.admit(address)) {
      this.counters.rateLimited++;
      return Promise.resolve("rate-limited");
    }
    if (this.inFlight >= MAX_CHECKS_IN_FLIGHT && this.waiting.length >= MAX_CHECKS_WAITING) {
      this.counters.busy++;
      return Promise.resolve("busy");
    }
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
        if (accepted) this.refund(address);
        resolve(accepted ? "accepted" : "refused");
      };
      this.waiting.push({ run });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < MAX_CHECKS_IN_FLIGHT) {
      const next = this.waiting.shift();
      if (!next) return;
      this.inFlight++;
      void next.run().finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private admit(address: string): boolean {
    const now = this.nowMs();
    const { bucket, admitted } = takeToken(this.buckets.get(address), now, LOGIN_LIMITS_PER_ADDRESS);
    this.buckets.delete(address);
    this.buckets.set(address, bucket);
    if (this.buckets.size > MAX_TRACKED_ADDRESSES) {
      const stalest = this.buckets.keys().next().value;
      if (stalest !== undefined) this.buckets.delete(stalest);
    }
    return admitted;
  }

  /**
   * A login that succeeded gives its token back: only failures use up an address's budget, so the
   * gateways of a whole site behind one NAT reconnect after a broker restart as fast as they check.
   */
  private refund(address: string): void {
    const bucket = this.buckets.get(address);
    if (bucket)
      this.buckets.set(address, {
        ...bucket,
        tokens: Math.min(LOGIN_LIMITS_PER_ADDRESS.burst, bucket.tokens + 1),
      });
  }

  /** A hash with the users file's parameters, of a password nobody knows: made once, on first need. */
  private decoyHash(): Promise<string> {
    this.decoy ??= hashPassword(randomBytes(24).toString("base64"));
    return this.decoy;
  }
}
