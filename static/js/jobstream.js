// Follow one job's results over its WebSocket until every result is in.
//
// The server sends each result once per connection, starting with those that arrived
// before the socket opened, and closes with 1000 when the job is complete. If the socket
// drops early, wait (jittered backoff), catch up with GET /v1/jobs/{id}, and reconnect
// unless the job is done. Results are de-duplicated by request_id, so catching up and
// replays are harmless.

import { backoffDelayMs, sleep } from "./backoff.js";

export const CLOSE_NORMAL = 1000;
export const CLOSE_UNKNOWN_JOB = 4404;

/**
 * @param job  the accepted job: {job_id, requests: [{request_id}], links: {ws}}
 * @param api  {openJobSocket(jobId, path), getJob(jobId)}
 * @param on   {result(result), missing(detail), reconnecting(delayMs), settled()}
 */
export function followJob(job, api, on, backoff = {}) {
  const expected = new Set(job.requests.map((r) => r.request_id));
  const seen = new Set();
  let failures = 0;
  let finished = false;

  const complete = () => [...expected].every((id) => seen.has(id));

  function deliver(result) {
    if (!result || !result.request_id || seen.has(result.request_id)) return;
    seen.add(result.request_id);
    failures = 0;
    on.result(result);
  }

  function finish(callback) {
    if (finished) return;
    finished = true;
    callback();
  }

  function connect() {
    const socket = api.openJobSocket(job.job_id, job.links?.ws);
    let missingDetail = null;
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.request_id) deliver(message);
      else if (message.error === "not_found") missingDetail = message.detail;
    });
    socket.addEventListener("close", (event) => {
      if (event.code === CLOSE_UNKNOWN_JOB) {
        finish(() => on.missing(missingDetail || `the server does not know job ${job.job_id}`));
      } else if (complete()) {
        finish(on.settled);
      } else {
        catchUp();
      }
    });
  }

  async function catchUp() {
    const delayMs = backoffDelayMs(failures, backoff);
    failures += 1;
    on.reconnecting?.(delayMs);
    await sleep(delayMs);
    const answer = await api.getJob(job.job_id);
    if (answer.ok) {
      for (const entry of answer.job.requests) if (entry.result) deliver(entry.result);
      if (complete()) return finish(on.settled);
    } else if (answer.status === 404) {
      return finish(() => on.missing(answer.detail));
    }
    connect();
  }

  connect();
  return { seen, complete };
}
