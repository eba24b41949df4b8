// The gateway's HTTP and WebSocket API, and nothing else: no DOM, no retries.
// Every call answers a plain object instead of throwing, so callers branch on `ok`.

/** POST the files to /v1/classify as one job (multipart field `files`). */
export async function postClassify(files) {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const init = { method: "POST", body: form };
  return request("/v1/classify", init, (job) => ({ job }), { askForKey: true });
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

/**
 * The subprotocols a WebSocket offers: "iras", and with a key "iras.key.<key, base64url>".
 * A browser cannot set headers on a WebSocket, and a key in the URL would be written to
 * every load balancer's and proxy's log; the gateway accepts with "iras" alone.
 */
export function socketProtocols(key) {
  if (!key) return ["iras"];
  const bytes = new TextEncoder().encode(key);
  const base64 = btoa(String.fromCharCode(...bytes));
  const base64url = base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return ["iras", `iras.key.${base64url}`];
}

/** Open the job's result stream (one JSON message per result). */
export function openJobSocket(jobId, path = `/v1/jobs/${encodeURIComponent(jobId)}/ws`) {
  return new WebSocket(socketUrl(path, window.location), socketProtocols(storedKey()));
}

// A gateway with IRAS_API_KEYS set answers 401 without a valid key. An upload (something
// the person just did, never a background poll) then asks for one, keeps it in this
// browser, and every call sends it. A refused key is asked for again, a few times at
// most; cancelling stops the asking until the page is reloaded.
const KEY_STORAGE = "iras-api-key";
export const MAX_KEY_PROMPTS = 3;

function storedKey() {
  try {
    return window.localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

let declined = false;

function askForKey(detail, refusedKey) {
  if (declined) return false;
  const question = refusedKey
    ? `The API key was refused (${detail}). Enter a valid key:`
    : `This IRAS needs an API key (${detail}). Key:`;
  const key = window.prompt(question)?.trim();
  if (!key) {
    declined = true;
    return false;
  }
  try {
    window.localStorage.setItem(KEY_STORAGE, key);
  } catch {
    return false;
  }
  return true;
}

async function request(url, init, onOk, { askForKey: ask = false } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const key = storedKey();
    const answer = await send(url, init, onOk, key);
    if (answer.status !== 401 || !ask) return answer;
    // Several uploads may be refused at once: only one asks, the others use its answer.
    const keyChanged = storedKey() !== key;
    if (attempt >= MAX_KEY_PROMPTS || (!keyChanged && !askForKey(answer.detail, key))) {
      declined = true;
      return { ...answer, detail: `${answer.detail} (reload the page to enter a key)` };
    }
  }
}

async function send(url, init, onOk, key) {
  const headers = { Accept: "application/json" };
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
  if (response.ok && body !== null) return { ok: true, status: response.status, ...onOk(body) };
  return {
    ok: false,
    status: response.status,
    error: body?.error ?? "http_error",
    detail: body?.detail ?? `HTTP ${response.status} ${response.statusText}`.trim(),
    retryAfter: response.headers.get("Retry-After"),
  };
}
