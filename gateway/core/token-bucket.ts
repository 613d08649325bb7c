/**
 * A token bucket: `ratePerSecond` sustained, `burst` at once. Pure: the caller keeps the bucket and
 * passes the time, so the gateway's inbound queue and the deterministic simulator admit alike.
 */
export interface TokenBucket {
  readonly tokens: number;
  readonly atMs: number;
}

export interface BucketLimits {
  readonly ratePerSecond: number;
  readonly burst: number;
}

/** Takes one token if there is one; a bucket never seen before starts full. */
export function takeToken(
  bucket: TokenBucket | undefined,
  nowMs: number,
  limits: BucketLimits,
): { readonly bucket: TokenBucket; readonly admitted: boolean } {
  const elapsedMs = bucket ? Math.max(0, nowMs - bucket.atMs) : 0;
  const tokens = bucket
    ? Math.min(limits.burst, bucket.tokens + (elapsedMs * limits.ratePerSecond) / 1000)
    : limits.burst;
  const admitted = tokens >= 1;
  return { bucket: { tokens: admitted ? tokens - 1 : tokens, atMs: nowMs }, admitted };
}
