// Building the page. Everything from the API is attacker-controlled (job names, labels, logs): it only ever goes
// into text nodes and attribute values set one by one, never into HTML.

const SVG = 'http://www.w3.org/2000/svg';

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.className = value;
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (name === 'href' || name === 'src') {
      element.setAttribute(name, safeUrl(value));
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

// Only links of our own (#/...) or to http(s): never javascript: or data: from an attacker's string.
export function safeUrl(value) {
  const text = String(value);
  if (text.startsWith('#') || /^https?:\/\//i.test(text)) return text;
  return '#';
}

export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  return append(element, children);
}

export function svg(tag, attributes, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, String(value));
  return append(element, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

const STATE_CLASSES = {
  pending: 'wait', queued: 'wait', new: 'wait', askforbid: 'wait', askforbidaccepted: 'wait', bidaccepted: 'run',
  running: 'run', publishing: 'run', completed: 'ok', failed: 'bad', stopped: 'off', cancelled: 'off',
  askforbidrejected: 'off', bidrejected: 'off', approved: 'ok', rejected: 'bad', connected: 'ok',
  disconnected: 'bad', undefined: 'off',
};

export function badge(state) {
  const text = String(state || 'Unknown');
  const kind = STATE_CLASSES[text.toLowerCase()] || 'off';
  return h('span', { class: `badge ${kind}` }, text);
}

export function labelChips(labels, max = 8) {
  const entries = Object.entries(labels || {});
  const chips = entries.slice(0, max).map(([key, value]) => h('span', { class: 'chip', title: `${key}=${value}` }, `${key}=${value}`));
  if (entries.length > max) chips.push(h('span', { class: 'chip more' }, `+${entries.length - max}`));
  return h('span', { class: 'chips' }, chips.length ? chips : h('span', { class: 'muted' }, '—'));
}

export function errorBox(error) {
  const status = error && error.status;
  const title = status === 403 ? 'Forbidden' : status === 404 ? 'Not found' : status === 0 ? 'No connection' : 'Error';
  const detail = status === 403 ? 'Your credentials do not allow this. ' : '';
  return h('div', { class: `alert ${status === 403 ? 'forbidden' : 'error'}`, role: 'alert' },
    h('strong', null, title + (status ? ` (${status})` : '')), ': ', detail, String((error && error.message) || error));
}

// A table: columns are [title, (row) => cell content, class]; rows keep their order.
export function table(columns, rows, { empty = 'Nothing here.', rowAttributes } = {}) {
  const head = h('thead', null, h('tr', null, columns.map(([title, , cls]) => h('th', { class: cls, scope: 'col' }, title))));
  const body = h('tbody', null,
    rows.length
      ? rows.map((row) => h('tr', rowAttributes ? rowAttributes(row) : null, columns.map(([, cell, cls]) => h('td', { class: cls }, cell(row)))))
      : h('tr', null, h('td', { colspan: columns.length, class: 'muted empty' }, empty)));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table' }, head, body));
}

export function definitions(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', null, title), children);
}

let toastTimer = null;
// A short message in the corner. It is gone at the next page, unless `keep` (for a message about leaving this one).
export function toast(message, kind = 'info', { keep = false } = {}) {
  const element = document.getElementById('toast');
  element.className = `toast ${kind}`;
  element.dataset.keep = keep ? 'once' : '';
  element.textContent = message;
  element.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { element.hidden = true; }, 5000);
}

export function pageChanged() {
  const element = document.getElementById('toast');
  if (element.dataset.keep === 'once') element.dataset.keep = '';
  else element.hidden = true;
}
