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
  const key = storedKey();
  const query = key ? `?api_key=${encodeURIComponent(key)}` : "";
  return new WebSocket(socketUrl(path + query, window.location));
}

// A gateway with IRAS_API_KEYS set answers 401 without a valid key: the page asks for
// one once, keeps it in this browser, and sends it with every call.
const KEY_STORAGE = "iras-api-key";

function storedKey() {
  try {
    return window.localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

let declined = false; // asked once and refused: the page stops asking until reloaded

function askForKey(detail) {
  if (declined) return false;
  const key = window.prompt(`This IRAS needs an API key (${detail}). Key:`);
  if (!key) {
    declined = true;
    return false;
  }
  try {
    window.localStorage.setItem(KEY_STORAGE, key.trim());
  } catch {
    return false;
  }
  return true;
}

async function request(url, init, onOk, asked = false) {
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers["X-API-Key"] = key;
  let response;
  try {
    response = await fetch(url, { ...init, headers });
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
  if (response.status === 401 && !asked && askForKey(body?.detail ?? "unauthorized")) {
    return request(url, init, onOk, true);
  }
  if (response.ok && body !== null) return { ok: true, status: response.status, ...onOk(body) };
  return {
    ok: false,
    status: response.status,
    error: body?.error ?? "http_error",
    detail: body?.detail ?? `HTTP ${response.status} ${response.statusText}`.trim(),
    retryAfter: response.headers.get("Retry-After"),
  };
}
