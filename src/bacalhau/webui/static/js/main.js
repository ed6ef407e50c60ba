// The app: hash routes (#/, #/jobs, #/jobs/<id>, #/nodes, #/nodes/<id>) to page modules. A page's mount(root,
// params, context) draws into root and returns a function that stops what it started (polling, log streams).

import * as api from './api.js';
import { errorBox, h, pageChanged, replace } from './dom.js';
import * as dashboard from './pages/dashboard.js';
import * as job from './pages/job.js';
import * as jobs from './pages/jobs.js';
import * as login from './pages/login.js';
import * as node from './pages/node.js';
import * as nodes from './pages/nodes.js';

const ROUTES = [
  [/^\/?$/, dashboard, 'dashboard'],
  [/^\/jobs\/?$/, jobs, 'jobs'],
  [/^\/jobs\/([^/]+)$/, job, 'jobs'],
  [/^\/nodes\/?$/, nodes, 'nodes'],
  [/^\/nodes\/([^/]+)$/, node, 'nodes'],
];

const main = document.getElementById('main');
let unmount = null;
let loginShown = false;

export function parseHash() {
  const hash = location.hash.replace(/^#/, '');
  const [path, search] = hash.split('?', 2);
  return { path: path || '/', query: new URLSearchParams(search || '') };
}

function stopPage() {
  if (unmount) {
    try {
      unmount();
    } catch (error) {
      console.warn(error);
    }
    unmount = null;
  }
}

function showSession() {
  const user = api.credentialsUser();
  const who = document.getElementById('who');
  who.textContent = user ? `Signed in: ${user}` : '';
  document.getElementById('logout').hidden = !api.credentials();
}

function render() {
  stopPage();
  pageChanged();
  loginShown = false;
  showSession();
  const { path, query } = parseHash();
  const found = ROUTES.map(([pattern, page, nav]) => [pattern.exec(path), page, nav]).find(([match]) => match);
  for (const link of document.querySelectorAll('[data-nav]')) {
    const active = !!found && link.dataset.nav === found[2];
    link.classList.toggle('active', active);
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!found) {
    replace(main, h('h1', null, 'Not found'), h('p', null, h('a', { href: '#/' }, 'Back to the dashboard')));
    return;
  }
  const [match, page] = found;
  const params = match.slice(1).map((part) => decodeURIComponent(part));
  replace(main);
  document.title = 'Bacalhau';
  unmount = page.mount(main, params, { query, rerender: render }) || null;
}

function showLogin(detail) {
  if (loginShown) return;
  loginShown = true;
  stopPage();
  unmount = login.mount(main, [], { detail, onDone: () => render() }) || null;
}

window.addEventListener('hashchange', render);
window.addEventListener('bacalhau:unauthorized', (event) => showLogin(event.detail));
document.getElementById('logout').addEventListener('click', () => {
  api.clearCredentials();
  render();
});

api.init().then(render, (error) => replace(main, errorBox(error)));
