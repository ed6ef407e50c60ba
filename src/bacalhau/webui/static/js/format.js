// Times, sizes and identifiers as people read them.

// A time from the API: Unix nanoseconds (CreateTime, ModifyTime) or an RFC 3339 string (history, heartbeats).
export function toDate(value) {
  if (value === null || value === undefined || value === '' || value === 0) return null;
  const date = typeof value === 'number' ? new Date(value / 1e6) : new Date(value);
  return Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1971 ? null : date;
}

const pad = (n) => String(n).padStart(2, '0');

export function dateTime(value) {
  const date = toDate(value);
  if (!date) return '—';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function clock(value) {
  const date = toDate(value);
  return date ? `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` : '—';
}

export function ago(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return '—';
  const seconds = Math.round((now - date.getTime()) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function duration(fromValue, toValue) {
  const from = toDate(fromValue);
  const to = toDate(toValue);
  if (!from || !to) return '—';
  let seconds = Math.max(0, Math.round((to - from) / 1000));
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]]) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  if (!parts.length || seconds) parts.push(`${seconds}s`);
  return parts.slice(0, 2).join(' ');
}

export function bytes(value) {
  let number = Number(value) || 0;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let unit = 0;
  while (number >= 1024 && unit < units.length - 1) {
    number /= 1024;
    unit += 1;
  }
  return `${unit ? number.toFixed(number < 10 ? 1 : 0) : number} ${units[unit]}`;
}

export function cores(value) {
  const number = Number(value) || 0;
  return `${Number.isInteger(number) ? number : number.toFixed(2)} CPU`;
}

export function shortId(id) {
  const text = String(id || '');
  const match = /^([a-z]-)([0-9a-f]{8})-[0-9a-f-]{27}$/.exec(text);
  return match ? match[1] + match[2] : text;
}

// Execution states (integers on the wire, v1.5.2+ numbering).
export const EXECUTION_STATES = [
  'Undefined', 'New', 'AskForBid', 'AskForBidAccepted', 'AskForBidRejected', 'BidAccepted', 'Running', 'Publishing',
  'BidRejected', 'Completed', 'Failed', 'Cancelled',
];
export const DESIRED_STATES = ['Pending', 'Running', 'Stopped'];
export const executionState = (n) => EXECUTION_STATES[n] || `State ${n}`;
export const desiredState = (n) => DESIRED_STATES[n] || `State ${n}`;
export const isExecuting = (n) => n === 5 || n === 6 || n === 7;
export const isDiscarded = (n) => n === 4 || n === 8 || n === 10 || n === 11;
export const JOB_STATES = ['Pending', 'Queued', 'Running', 'Completed', 'Failed', 'Stopped'];
export const isTerminalJob = (state) => state === 'Completed' || state === 'Failed' || state === 'Stopped';
