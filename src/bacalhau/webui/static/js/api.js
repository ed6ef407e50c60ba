// The one client of the REST API. Credentials (the value of an Authorization header) live in sessionStorage only:
// gone when the browser session ends, never in a URL. A 401 is announced with a "bacalhau:unauthorized" event, so
// that the app can ask for credentials wherever it happens.

const CREDENTIALS = 'bacalhau.credentials';
const WS_PROTOCOL = 'bacalhau.v1';
const WS_CREDENTIALS = 'bacalhau.auth.';

let baseUrl = '';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Where the API is: the UI server says so (WebUI.Backend, or this node's API as the browser reaches it).
export async function init() {
  const response = await fetch('config.json', { cache: 'no-store', credentials: 'same-origin' });
  if (!response.ok) throw new ApiError(response.status, 'the web UI has no configuration');
  const config = await response.json();
  if (typeof config.api !== 'string' || !/^https?:\/\//.test(config.api)) throw new ApiError(0, 'bad API address');
  baseUrl = config.api.replace(/\/+$/, '');
}

export function apiUrl() {
  return baseUrl;
}

export function credentials() {
  return sessionStorage.getItem(CREDENTIALS) || '';
}

export function setCredentials(value) {
  sessionStorage.setItem(CREDENTIALS, value);
}

export function clearCredentials() {
  sessionStorage.removeItem(CREDENTIALS);
}

function base64(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

export function basicCredentials(username, password) {
  return 'Basic ' + base64(new TextEncoder().encode(`${username}:${password}`));
}

export function bearerCredentials(key) {
  return 'Bearer ' + key;
}

// The user named by the stored credentials (for the header), or '' for an API key.
export function credentialsUser() {
  const value = credentials();
  if (!value.startsWith('Basic ')) return value ? 'API key' : '';
  try {
    const decoded = new TextDecoder().decode(Uint8Array.from(atob(value.slice(6)), (c) => c.charCodeAt(0)));
    return decoded.slice(0, decoded.indexOf(':'));
  } catch {
    return '';
  }
}

function url(path, query) {
  const target = new URL(baseUrl + path);
  for (const [name, value] of Object.entries(query || {})) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== '') target.searchParams.append(name, String(item));
    }
  }
  return target;
}

async function request(method, path, { query, body } = {}) {
  const headers = { Accept: 'application/json' };
  const auth = credentials();
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(0, `cannot reach the API at ${baseUrl}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    let message = (data && typeof data.Message === 'string' && data.Message) || text.slice(0, 500) || response.statusText;
    const reason = data && data.Details && data.Details.reason;
    if (typeof reason === 'string' && reason) message = `${message}: ${reason}`;
    const error = new ApiError(response.status, message);
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent('bacalhau:unauthorized', { detail: { message, hadCredentials: !!auth } }));
    }
    throw error;
  }
  return data;
}

const job = (id) => `/api/v1/orchestrator/jobs/${encodeURIComponent(id)}`;
const node = (id) => `/api/v1/orchestrator/nodes/${encodeURIComponent(id)}`;

export const summary = () => request('GET', '/api/v1/ui/summary');
export const listJobs = (filters) => request('GET', '/api/v1/ui/jobs', { query: filters });
export const getJob = (id) => request('GET', job(id), { query: { include: 'history,executions' } });
export const jobResults = (id) => request('GET', job(id) + '/results');
export const stopJob = (id, reason) => request('DELETE', job(id), { body: { reason } });
export const rerunJob = (id) => request('PUT', job(id) + '/rerun', { body: { Reason: 'rerun from the web UI' } });
export const listNodes = (filters = {}) => request('GET', '/api/v1/orchestrator/nodes', {
  query: { 'filter-approval': filters.approval, 'filter-status': filters.status },
});
export const getNode = (id) => request('GET', node(id));
export const nodeAction = (id, action) => request('PUT', node(id), { body: { Action: action, NodeID: id } });
// A read that needs credentials when the API wants them (one the original's API has too): how the login form checks
// what it was given.
export const checkAccess = () => request('GET', '/api/v1/orchestrator/jobs', { query: { limit: 1 } });

// An execution's output over the WebSocket log stream. Browsers cannot set an Authorization header on a WebSocket,
// and a URL with a secret in it ends up in logs: the credentials go as a subprotocol the server reads (and never
// echoes). Returns a function that closes the stream.
export function streamLogs(jobId, executionId, { follow }, { onLine, onError, onEnd }) {
  const target = url(job(jobId) + '/logs', { execution_id: executionId, follow: follow ? 'true' : '' });
  target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
  const protocols = [WS_PROTOCOL];
  const auth = credentials();
  if (auth) {
    const encoded = base64(new TextEncoder().encode(auth)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    protocols.push(WS_CREDENTIALS + encoded);
  }
  let failed = false;
  let closedByUs = false;
  const socket = new WebSocket(target, protocols);
  socket.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message && message.error) {
      failed = true;
      onError(String(message.error));
    } else if (message && message.value) {
      onLine(Number(message.value.Type) || 0, String(message.value.Line ?? ''));
    }
  };
  socket.onerror = () => {
    if (!closedByUs && !failed) {
      failed = true;
      onError('the log stream could not be opened (or was cut)');
    }
  };
  socket.onclose = (event) => {
    if (!closedByUs) onEnd(event.code, failed);
  };
  return () => {
    closedByUs = true;
    socket.close();
  };
}
