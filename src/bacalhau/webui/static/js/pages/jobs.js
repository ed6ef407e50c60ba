// The jobs list: newest first, filtered by state, type, labels and name (in the query, not by paging through every
// job), a page at a time with the API's next_token, refreshed in place while the tab is shown.

import * as api from '../api.js';
import { badge, errorBox, h, labelChips, replace, table } from '../dom.js';
import { ago, dateTime, JOB_STATES, shortId } from '../format.js';
import { poll } from '../poll.js';

const INTERVAL = 3000;
const TYPES = ['batch', 'ops', 'daemon', 'service'];
const SIZES = [20, 50, 100];

function select(id, label, options, value) {
  const element = h('select', { id, name: id },
    h('option', { value: '' }, `Any ${label.toLowerCase()}`),
    options.map((option) => h('option', { value: option, selected: option === value }, option)));
  return [h('label', { for: id, class: 'sr-only' }, label), element];
}

export function mount(root, _params, { query }) {
  const filters = {
    state: JOB_STATES.includes(query.get('state')) ? query.get('state') : '',
    type: TYPES.includes(query.get('type')) ? query.get('type') : '',
    labels: (query.get('labels') || '').slice(0, 1000),
    name: (query.get('name') || '').slice(0, 255),
  };
  let size = SIZES.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : SIZES[0];
  let tokens = ['']; // the token of each page up to the current one
  let nextToken = '';

  const [stateLabel, stateSelect] = select('filter-state', 'State', JOB_STATES, filters.state);
  const [typeLabel, typeSelect] = select('filter-type', 'Type', TYPES, filters.type);
  const labelsInput = h('input', { id: 'filter-labels', name: 'labels', placeholder: 'Labels, e.g. env=prod', value: filters.labels, maxlength: 1000 });
  const nameInput = h('input', { id: 'filter-name', name: 'name', type: 'search', placeholder: 'Name or ID', value: filters.name, maxlength: 255 });
  const sizeSelect = h('select', { id: 'page-size', 'aria-label': 'Jobs per page' }, SIZES.map((n) => h('option', { value: n, selected: n === size }, `${n} per page`)));
  const form = h('form', { class: 'filters', role: 'search', id: 'job-filters' },
    stateLabel, stateSelect, typeLabel, typeSelect,
    h('label', { for: 'filter-labels', class: 'sr-only' }, 'Labels'), labelsInput,
    h('label', { for: 'filter-name', class: 'sr-only' }, 'Name'), nameInput,
    h('button', { type: 'submit', class: 'button' }, 'Filter'));
  const listPart = h('div', { id: 'jobs-table' }, h('p', { class: 'muted' }, 'Loading…'));
  const previous = h('button', { type: 'button', class: 'button', id: 'jobs-newer', disabled: true }, '← Newer');
  const next = h('button', { type: 'button', class: 'button', id: 'jobs-older', disabled: true }, 'Older →');
  const where = h('span', { class: 'muted', id: 'jobs-page' }, 'Page 1');
  const updated = h('span', { class: 'muted small', id: 'jobs-updated' });

  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Jobs'), updated),
    form,
    h('section', { class: 'card flush' }, listPart),
    h('div', { class: 'pager' }, previous, where, next, sizeSelect));

  function remember() {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(filters)) if (value) search.set(name, value);
    if (size !== SIZES[0]) search.set('limit', String(size));
    const text = search.toString();
    history.replaceState(null, '', `#/jobs${text ? '?' + text : ''}`);
  }

  function render(items) {
    replace(listPart, table([
      ['Name', (job) => h('a', { href: `#/jobs/${encodeURIComponent(job.ID)}`, class: 'job-link' }, job.Name || job.ID)],
      ['ID', (job) => h('code', { title: job.ID }, shortId(job.ID)), 'narrow-hide'],
      ['Type', (job) => job.Type, 'narrow-hide'],
      ['State', (job) => badge(job.State && job.State.StateType)],
      ['Created', (job) => h('span', { title: dateTime(job.CreateTime) }, ago(job.CreateTime))],
      ['Message', (job) => h('span', { class: 'message' }, (job.State && job.State.Message) || ''), 'narrow-hide wide'],
      ['Labels', (job) => labelChips(job.Labels, 3), 'narrow-hide'],
    ], items, { empty: 'No jobs match.', rowAttributes: (job) => ({ dataset: { jobId: job.ID } }) }));
  }

  let generation = 0;
  async function refresh() {
    const mine = generation;
    try {
      const page = await api.listJobs({ ...filters, limit: size, next_token: tokens[tokens.length - 1] });
      if (mine !== generation) return; // the filters or the page changed meanwhile
      render(page.Items || []);
      nextToken = page.NextToken || '';
      next.disabled = !nextToken;
      previous.disabled = tokens.length < 2;
      where.textContent = `Page ${tokens.length}`;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (mine === generation) replace(listPart, errorBox(error));
    }
  }

  const poller = poll(refresh, INTERVAL);

  function restart() {
    generation += 1;
    poller.now();
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    filters.state = stateSelect.value;
    filters.type = typeSelect.value;
    filters.labels = labelsInput.value.trim();
    filters.name = nameInput.value.trim();
    tokens = [''];
    remember();
    restart();
  });
  for (const element of [stateSelect, typeSelect]) element.addEventListener('change', () => form.requestSubmit());
  sizeSelect.addEventListener('change', () => {
    size = Number(sizeSelect.value);
    tokens = [''];
    remember();
    restart();
  });
  next.addEventListener('click', () => {
    if (!nextToken) return;
    tokens.push(nextToken);
    restart();
  });
  previous.addEventListener('click', () => {
    if (tokens.length > 1) tokens.pop();
    restart();
  });

  return () => poller.stop();
}
