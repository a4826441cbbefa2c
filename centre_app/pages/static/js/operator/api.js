// The JSON API from the operator's pages: the session cookie travels by itself (same origin),
// so there is no token here. Refusals become `ApiError` with the API's own words.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// An error body's words: a 422's `detail` is a list of {loc, msg}; any other refusal's is a string.
export function problem(body) {
  if (!body || body.detail === undefined) return "the centre refused it";
  return Array.isArray(body.detail) ? body.detail.map((item) => item.msg).join("; ") : String(body.detail);
}

const storageListeners = [];

// Called with `true` whenever an answer carries the centre's storage-fault header.
export function onStorageHeader(listener) {
  storageListeners.push(listener);
}

async function call(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.headers.get("Telecare-Storage-Fault") === "true") storageListeners.forEach((l) => l(true));
  if (response.status === 401) {  // the session ended (signed out elsewhere, or expired)
    window.location.assign(`/signin?next=${encodeURIComponent(window.location.pathname)}`);
    throw new ApiError(401, "signed out");
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, problem(body));
  return body;
}

export function getJson(path) {
  return call(path, { headers: { Accept: "application/json" } });
}

export function send(path, method = "POST", body = undefined) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return call(path, options);
}
