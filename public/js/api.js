// The one way the admin web talks to the host: JSON requests with the
// session cookie (HttpOnly: this code never sees it), and one error type
// that carries the server's message, code, HTTP status and request id so
// every page can show them beside the control that caused them.

export class ApiError extends Error {
  constructor(status, code, message, requestId, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

// The host's error body is {"error": {code, message, request_id}}; anything
// else (a proxy's HTML page, a dropped connection) still becomes an ApiError.
export async function errorFrom(response) {
  const text = await response.text().catch(() => "");
  let body = {};
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  const e = body.error || {};
  return new ApiError(
    response.status,
    e.code || `http_${response.status}`,
    e.message || `${response.status} ${response.statusText || "error"}`,
    e.request_id || response.headers.get("x-request-id"),
    response.headers.get("retry-after"),
  );
}

// Where the sign-in page sends the user back to: this page, as a path.
export function signInUrl() {
  const here = location.pathname + location.search + location.hash;
  return `/login.html?next=${encodeURIComponent(here)}`;
}

export async function request(method, path, { body, json, headers } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { accept: "application/json", ...headers },
  };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["content-type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network", `The host did not answer (${e.message}). Check that it is running.`, null);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    // The session ended under the page (signed out everywhere, disabled,
    // expired): sign in again and come back here, rather than show every
    // control's error.
    if (error.status === 401 && error.code === "unauthorized") {
      location.assign(signInUrl());
      return new Promise(() => {}); // the page is going away
    }
    throw error;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const get = (path) => request("GET", path);
export const post = (path, json) => request("POST", path, { json });
export const put = (path, json) => request("PUT", path, { json });
export const patch = (path, json) => request("PATCH", path, { json });
export const del = (path) => request("DELETE", path);

// Uploads `file` with upload progress (fetch cannot report it; XHR can).
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("content-type", "application/zip");
    xhr.setRequestHeader("accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const e = body.error || {};
      reject(new ApiError(xhr.status, e.code || `http_${xhr.status}`,
        e.message || `${xhr.status} ${xhr.statusText}`,
        e.request_id || xhr.getResponseHeader("x-request-id")));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "The upload was cut off: the host did not answer.", null));
    xhr.send(file);
  });
}
