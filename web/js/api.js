// Thin fetch wrapper: JSON in and out, API errors as readable ApiError messages. A 401
// (no login, or the session ended) goes to the login page.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * Calls the node's API. `body` may be a plain object (sent as JSON), a Blob or an
 * ArrayBuffer (sent raw with `opts.type`). Resolves to the parsed JSON (null for 204).
 */
export async function api(method, path, body, opts = {}) {
  const init = {
    method,
    headers: { Accept: 'application/json' },
    signal: opts.signal,
    credentials: 'same-origin',
  };
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    init.body = body;
    init.headers['Content-Type'] = opts.type || 'application/octet-stream';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Cannot reach the Shoal node. Is it still running?');
  }
  if (res.status === 401) toLogin();
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = (data && data.error) || text.trim() || `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, msg, data);
  }
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** Uploads raw bytes with progress (fetch has no upload progress). */
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status === 401) toLogin();
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, (data && data.error) || `Upload failed (${xhr.status})`, data));
    };
    xhr.onerror = () => reject(new ApiError(0, 'Upload failed: cannot reach the Shoal node.'));
    xhr.send(file);
  });
}

/** Leaves for the login page (the node wants a login). */
export function toLogin() {
  location.assign('/login');
}

/** Ends the session and shows the login page. */
export async function logout() {
  try {
    await fetch('/api/logout', { method: 'POST', credentials: 'same-origin' });
  } finally {
    toLogin();
  }
}

/** Shows the sidebar's Log out button when the node asks for a login. */
export async function initSession() {
  const button = document.getElementById('logout');
  if (!button) return;
  try {
    const s = await get('/api/session');
    if (s && s.required) {
      button.hidden = false;
      if (s.user) button.title = `Logged in as ${s.user}`;
      button.addEventListener('click', logout);
    }
  } catch {
    // The button stays hidden; API calls report the error.
  }
}
