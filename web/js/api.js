// REST client for /api/v1: cookie session, CSRF header, one error shape.

const BASE = '/api/v1';
const UNSAFE = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/** An error answer of the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, { retryAfter = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  get isNetwork() {
    return this.status === 0;
  }
}

let onUnauthenticated = () => {};

/** Called with the error whenever a request answers 401 (session gone). */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

/** The value of a cookie readable by scripts, or null. */
export function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

/** True when the browser holds what looks like a session (sb_csrf is set with it). */
export function mayHaveSession() {
  return Boolean(readCookie('sb_csrf'));
}

/**
 * Sends a request. `body` is JSON unless `contentType` says otherwise.
 * Resolves with the parsed JSON answer (or null for an empty one).
 */
export async function request(method, path, body = undefined, { contentType = 'application/json', quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = contentType;
    init.body = contentType === 'application/json' ? JSON.stringify(body) : body;
  }
  if (UNSAFE.has(method)) {
    const csrf = readCookie('sb_csrf');
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;

  const error = errorOf(response.status, data, response.statusText, response.headers.get('Retry-After'));
  if (response.status === 401 && error.code !== 'invalid_credentials' && !quiet401) onUnauthenticated(error);
  return Promise.reject(error);
}

function errorOf(status, data, statusText, retryHeader) {
  const code = data?.error?.code || `http_${status}`;
  const message = data?.error?.message || statusText || 'The request failed.';
  const retryAfter = retryHeader && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader.trim()) : null;
  return new ApiError(status, code, message, { retryAfter });
}

/**
 * Uploads a file as the raw body (its own Content-Type), reporting progress
 * as a fraction 0…1; fetch cannot tell upload progress, XMLHttpRequest can.
 * Resolves with the parsed answer; `signal` aborts (rejecting with an
 * AbortError).
 */
export function upload(path, file, { onProgress = () => {}, signal = null } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', BASE + path);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    const csrf = readCookie('sb_csrf');
    if (csrf) xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(data);
        return;
      }
      const error = errorOf(xhr.status, data, xhr.statusText, xhr.getResponseHeader('Retry-After'));
      if (xhr.status === 401) onUnauthenticated(error);
      reject(error);
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.')));
    xhr.addEventListener('abort', () => reject(new DOMException('The upload was cancelled.', 'AbortError')));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

export const api = {
  get: (path, options) => request('GET', path, undefined, options),
  post: (path, body = {}, options) => request('POST', path, body, options),
  patch: (path, body, options) => request('PATCH', path, body, options),
  put: (path, body, options) => request('PUT', path, body, options),
  delete: (path, options) => request('DELETE', path, undefined, options),
};

/** A short sentence for an error, for inline messages and toasts. */
export function describeError(error, fallback = 'Something went wrong.') {
  if (!(error instanceof ApiError)) return fallback;
  if (error.isNetwork) return error.message;
  switch (error.code) {
    case 'forbidden':
      return error.message || 'You are not allowed to do that.';
    case 'csrf_failed':
      return 'Your session could not be verified. Reload the page and try again.';
    case 'internal':
      return 'The server ran into a problem. Please try again.';
    default:
      return error.message || fallback;
  }
}
