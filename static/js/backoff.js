// Retry timing, as pure functions (pass `random` to make them deterministic in tests).

export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 500, maxMs: 15_000, factor: 2 });

/**
 * Delay before retry number `attempt` (0 for the first): exponential, capped, with "equal
 * jitter" (half fixed, half random) so that many cards retrying at once do not stampede.
 */
export function backoffDelayMs(attempt, options = DEFAULT_BACKOFF, random = Math.random) {
  const { baseMs, maxMs, factor } = { ...DEFAULT_BACKOFF, ...options };
  const ceiling = Math.min(maxMs, baseMs * factor ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** A Retry-After header (seconds, or an HTTP date) in ms from `nowMs`; `fallbackMs` if unusable. */
export function retryAfterMs(header, fallbackMs, nowMs = Date.now()) {
  if (header == null || header === "") return fallbackMs;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? fallbackMs : Math.max(0, at - nowMs);
}

/** A promise that resolves after `ms`. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
