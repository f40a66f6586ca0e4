// The sign-in page: organization, extension, password.

import { h, uid } from '../dom.js';
import { logo } from '../icons.js';
import { ApiError } from '../api.js';
import { prefs } from '../drafts.js';

export function createSignIn(app, { expired = false, previous = null } = {}) {
  const last = prefs.get('lastSignIn', {});
  const field = (label, input, hint = null) => {
    const id = uid('field');
    input.id = id;
    return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint);
  };
  const organization = h('input', {
    name: 'organization', autocomplete: 'organization', required: true, spellcheck: 'false', autocapitalize: 'none',
    value: previous?.organization?.slug || last.organization || '',
  });
  const extension = h('input', {
    name: 'extension', autocomplete: 'username', required: true, inputmode: 'numeric',
    value: previous?.extension?.number || last.extension || '',
  });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const notice = expired
    ? h('div', { class: 'form-notice', role: 'status' }, 'Your session has ended. Sign in again to continue — your unsent drafts are kept.')
    : null;
  const submit = h('button', { class: 'button primary wide', type: 'submit' }, h('span', { class: 'button-label' }, 'Sign in'));

  const form = h(
    'form',
    { class: 'signin-form', novalidate: true, 'aria-label': 'Sign in' },
    notice,
    field('Organization', organization),
    field('Extension', extension),
    field('Password', password),
    error,
    submit,
  );

  let retryTimer = null;
  function showError(text) {
    error.textContent = text;
    error.hidden = false;
  }

  function lockFor(seconds) {
    let left = seconds;
    submit.disabled = true;
    const tick = () => {
      if (left <= 0) {
        clearInterval(retryTimer);
        submit.disabled = false;
        error.hidden = true;
        return;
      }
      showError(`Too many failed attempts. Try again in ${waitText(left)}.`);
      left -= 1;
    };
    clearInterval(retryTimer);
    tick();
    retryTimer = setInterval(tick, 1000);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const values = {
      organization: organization.value.trim().toLowerCase(),
      extension: extension.value.trim(),
      password: password.value,
    };
    const missing = [['organization', organization], ['extension', extension], ['password', password]].find(([name]) => !values[name]);
    if (missing) {
      showError(`Enter your ${missing[0]}.`);
      missing[1].focus();
      return;
    }
    submit.disabled = true;
    submit.classList.add('busy');
    try {
      await app.signIn(values.organization, values.extension, values.password);
      prefs.set('lastSignIn', { organization: values.organization, extension: values.extension });
    } catch (err) {
      submit.classList.remove('busy');
      submit.disabled = false;
      password.value = '';
      if (err instanceof ApiError && err.status === 429) {
        lockFor(err.retryAfter ?? 30);
      } else if (err instanceof ApiError && err.code === 'invalid_credentials') {
        showError('That organization, extension and password do not match. Check them and try again.');
      } else if (err instanceof ApiError && err.code === 'forbidden') {
        showError('This extension is disabled. Ask your administrator.');
      } else if (err instanceof ApiError) {
        showError(err.isNetwork ? err.message : `Sign-in failed: ${err.message}`);
      } else {
        showError('Sign-in failed. Please try again.');
      }
      password.focus();
    }
  });

  const el = h(
    'main',
    { class: 'signin' },
    h(
      'div',
      { class: 'signin-card' },
      h('div', { class: 'signin-brand' }, logo(40), h('span', null, 'Switchboard')),
      h('h1', null, 'Sign in'),
      h('p', { class: 'signin-sub' }, 'Use your organization, extension number and password.'),
      form,
    ),
  );

  queueMicrotask(() => {
    if (!organization.value) organization.focus();
    else if (!extension.value) extension.focus();
    else password.focus();
  });

  return { el, destroy: () => clearInterval(retryTimer) };
}

/** "45 seconds", "15 minutes". */
function waitText(seconds) {
  if (seconds <= 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}
