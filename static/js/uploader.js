// Upload files to /v1/classify with bounded concurrency.
//
// Files go in small groups (fewer requests and WebSockets for a big drop), sized so that
// every lane has work: five files on six lanes are five single-file requests. The server
// refuses a request whole if one file is bad, so a group refused with a 4xx is split and
// each file is sent alone: the bad one gets its own error, the others go through.
// Transient failures (network, 503 with Retry-After, 502/504, 429) are retried with backoff.

import { backoffDelayMs, retryAfterMs, sleep } from "./backoff.js";
import { createPool } from "./pool.js";

export const UPLOAD_LANES = 6;
export const MAX_GROUP = 8;
export const MAX_ATTEMPTS = 5;

const TRANSIENT = new Set([0, 429, 502, 503, 504]);

/** Sizes of the groups `count` files are sent in: as even as possible, each 1..maxGroup. */
export function groupSizes(count, lanes = UPLOAD_LANES, maxGroup = MAX_GROUP) {
  if (count <= 0) return [];
  const groups = Math.min(count, Math.max(lanes, Math.ceil(count / maxGroup)));
  const base = Math.floor(count / groups);
  const extra = count % groups;
  return Array.from({ length: groups }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Should a refused request be retried as it is (true), or is the refusal final (false)? */
export function isTransient(status) {
  return TRANSIENT.has(status);
}

/**
 * @param api  {postClassify(files)}
 * @param on   {uploading(items), accepted(items, job), refused(items, answer)}
 *             where `items` are the caller's objects, each with a `file`.
 */
export function createUploader(api, on, lanes = UPLOAD_LANES) {
  const pool = createPool(lanes);

  async function send(items, attempt = 0) {
    on.uploading(items);
    const answer = await api.postClassify(items.map((item) => item.file));
    if (answer.ok) return on.accepted(items, answer.job);
    if (isTransient(answer.status) && attempt + 1 < MAX_ATTEMPTS) {
      await sleep(retryAfterMs(answer.retryAfter, backoffDelayMs(attempt)));
      return send(items, attempt + 1);
    }
    if (items.length > 1 && answer.status >= 400 && answer.status < 500) {
      // Not awaited: each single goes back through the pool, this lane is freed now.
      for (const item of items) {
        pool.run(() => send([item])).catch((error) => {
          on.refused([item], { status: 0, error: "client_error", detail: String(error) });
        });
      }
      return undefined;
    }
    return on.refused(items, answer);
  }

  return {
    /** Queue `items` for upload; returns at once. */
    add(items) {
      let start = 0;
      for (const size of groupSizes(items.length, lanes)) {
        const group = items.slice(start, start + size);
        start += size;
        pool.run(() => send(group)).catch((error) => {
          on.refused(group, { status: 0, error: "client_error", detail: String(error) });
        });
      }
    },
  };
}
