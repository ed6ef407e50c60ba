// The login form, shown wherever the API answers 401: a username and password, or an API key. What is given is kept
// in sessionStorage (this tab's session only) and checked against the API before the page is shown again.

import * as api from '../api.js';
import { h, replace } from '../dom.js';

export function mount(root, _params, { detail, onDone }) {
  let mode = 'password';
  const message = h('p', { class: 'alert error', role: 'alert', id: 'login-error' });
  message.hidden = true;
  const username = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, maxlength: 100 });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 255 });
  const apiKey = h('input', { id: 'login-apikey', name: 'apikey', type: 'password', autocomplete: 'off', maxlength: 255 });
  const passwordFields = h('div', { class: 'fields' },
    h('label', { for: 'login-username' }, 'Username'), username,
    h('label', { for: 'login-password' }, 'Password'), password);
  const keyFields = h('div', { class: 'fields' }, h('label', { for: 'login-apikey' }, 'API key'), apiKey);
  keyFields.hidden = true;
  const submit = h('button', { type: 'submit', class: 'button primary', id: 'login-submit' }, 'Sign in');

  function show(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  function choose(next) {
    mode = next;
    passwordFields.hidden = mode !== 'password';
    keyFields.hidden = mode !== 'key';
    username.required = password.required = mode === 'password';
    apiKey.required = mode === 'key';
    for (const tab of tabs.children) tab.setAttribute('aria-selected', String(tab.dataset.mode === mode));
  }

  const tabs = h('div', { class: 'tabs', role: 'tablist' },
    h('button', { type: 'button', role: 'tab', dataset: { mode: 'password' }, id: 'login-mode-password', onclick: () => choose('password') }, 'Username & password'),
    h('button', { type: 'button', role: 'tab', dataset: { mode: 'key' }, id: 'login-mode-key', onclick: () => choose('key') }, 'API key'));

  const form = h('form', { class: 'login card', method: 'post', autocomplete: 'on', novalidate: false },
    h('h1', null, 'Sign in'),
    h('p', { class: 'muted' }, 'This Bacalhau API asks for credentials. They are kept for this browser tab only.'),
    tabs, message, passwordFields, keyFields, submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = mode === 'password'
      ? api.basicCredentials(username.value.trim(), password.value)
      : api.bearerCredentials(apiKey.value.trim());
    submit.disabled = true;
    show('');
    api.setCredentials(value);
    try {
      await api.checkAccess();
      onDone();
    } catch (error) {
      if (error.status === 403) {
        onDone(); // who they are is settled; what they may see, each page says
        return;
      }
      api.clearCredentials();
      show(error.status === 401 ? `Sign-in refused: ${error.message}` : `Could not sign in: ${error.message}`);
      password.value = '';
      apiKey.value = '';
    } finally {
      submit.disabled = false;
    }
  });

  choose('password');
  if (detail && detail.hadCredentials) {
    api.clearCredentials();
    show(`Your credentials were refused: ${detail.message}`);
  }
  replace(root, form);
  username.focus();
  return null;
}
