// hanchat's page: the gateway's message budget, mirrored (a token bucket: `rate` a second, up to `burst`),
// so that the page says "slow down" before the gateway refuses. `now` is in milliseconds.

export function createBucket(rate, burst, now = () => performance.now()) {
  const bucket = {
    rate: Number(rate) || 0,
    burst: Number(burst) || 1,
    tokens: 0,
    stamp: 0,
    reset() { bucket.tokens = bucket.burst; bucket.stamp = now(); },
    /** Takes `n` tokens if there are; false (nothing taken) when the budget is spent. */
    take(n) {
      if (bucket.rate <= 0) return true;
      const at = now();
      bucket.tokens = Math.min(bucket.burst, bucket.tokens + ((at - bucket.stamp) / 1000) * bucket.rate);
      bucket.stamp = at;
      if (bucket.tokens >= n) { bucket.tokens -= n; return true; }
      return false;
    },
  };
  bucket.reset();
  return bucket;
}
