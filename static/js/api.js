// The gateway's HTTP and WebSocket API, and nothing else: no DOM, no retries.
// Every call answers a plain object instead of throwing, so callers branch on `ok`.

/** POST the files to /v1/classify as one job (multipart field `files`). */
export async function postClassify(files) {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  return request("/v1/classify", { method: "POST", body: form }, (job) => ({ job }));
}

/** GET /v1/jobs/{id}: the job with `requests[i].result` for the results so far. */
export async function getJob(jobId) {
  return request(`/v1/jobs/${encodeURIComponent(jobId)}`, {}, (job) => ({ job }));
}

/** GET /v1/scaler: the worker fleet, the queue backlog and their recent timeline. */
export async function getScaler() {
  return request("/v1/scaler", {}, (scaler) => ({ scaler }));
}

/** The absolute ws:// or wss:// URL of a server path, for a page at `location`. */
export function socketUrl(path, location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** Open the job's result stream (one JSON message per result). */
export function openJobSocket(jobId, path = `/v1/jobs/${encodeURIComponent(jobId)}/ws`) {
  return new WebSocket(socketUrl(path, window.location));
}

async function request(url, init, onOk) {
  let response;
  try {
    response = await fetch(url, { ...init, headers: { Accept: "application/json" } });
  } catch (error) {
    return {
      ok: false,
      status: 0,
      error: "network_error",
      detail: `the server could not be reached (${error.message || error})`,
      retryAfter: null,
    };
  }
  const body = await response.json().catch(() => null);
  if (response.ok && body !== null) return { ok: true, status: response.status, ...onOk(body) };
  return {
    ok: false,
    status: response.status,
    error: body?.error ?? "http_error",
    detail: body?.detail ?? `HTTP ${response.status} ${response.statusText}`.trim(),
    retryAfter: response.headers.get("Retry-After"),
  };
}
