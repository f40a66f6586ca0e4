// Settings: account details, the default number for new texts, password
// change, alert tone mute, browser notifications.

import { h, replace, uid } from '../dom.js';
import { icon } from '../icons.js';
import { api, describeError } from '../api.js';
import { playTone, toneLabel } from '../sound.js';
import { notificationsSupported, notificationsEnabled, enableNotifications, disableNotifications } from '../notify.js';
import { withBusy } from './dialog.js';

function section(title, description, ...content) {
  const id = uid('section');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id, class: 'card-title' }, title), description ? h('p', { class: 'card-description' }, description) : null, ...content);
}

function toggle(label, { checked, onChange, hint = null, testId = null }) {
  const id = uid('toggle');
  const input = h('input', { id, type: 'checkbox', role: 'switch', class: 'switch-input', checked, 'data-testid': testId });
  const row = h('div', { class: 'toggle-row' }, h('label', { for: id, class: 'toggle-label' }, h('span', null, label), hint ? h('small', null, hint) : null), h('span', { class: 'switch' }, input, h('span', { class: 'switch-track', 'aria-hidden': 'true' })));
  input.addEventListener('change', () => onChange(input.checked, input));
  return { row, input };
}

export function createSettings(app) {
  const { store } = app;
  const me = store.me;

  // Account
  const account = section(
    'Account',
    null,
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Name'), h('dd', null, me.extension.name),
      h('dt', null, 'Extension'), h('dd', null, me.extension.number),
      h('dt', null, 'Organization'), h('dd', null, me.organization.name || me.organization.slug),
      h('dt', null, 'Role'), h('dd', null, me.extension.role === 'admin' ? 'Administrator' : 'Member'),
    ),
  );

  // Password
  const fields = {};
  const pwField = (name, label, autocomplete) => {
    const id = uid('pw');
    fields[name] = h('input', { id, type: 'password', autocomplete, required: true, name });
    return h('div', { class: 'field' }, h('label', { for: id }, label), fields[name]);
  };
  const pwStatus = h('p', { class: 'form-status', role: 'status' });
  const pwError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const pwSave = h('button', { class: 'button primary', type: 'submit' }, 'Change password');
  const pwForm = h('form', { class: 'stack narrow', novalidate: true }, pwField('current', 'Current password', 'current-password'), pwField('next', 'New password (at least 8 characters)', 'new-password'), pwField('confirm', 'Repeat the new password', 'new-password'), pwError, h('div', { class: 'form-actions' }, pwSave, pwStatus));
  pwForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    pwError.hidden = true;
    pwStatus.textContent = '';
    const current = fields.current.value;
    const next = fields.next.value;
    if (!current || !next) {
      pwError.textContent = 'Fill in your current and your new password.';
      pwError.hidden = false;
      return;
    }
    if (next !== fields.confirm.value) {
      pwError.textContent = 'The new passwords do not match.';
      pwError.hidden = false;
      fields.confirm.focus();
      return;
    }
    try {
      await withBusy(pwSave, () => api.post('/me/password', { current_password: current, new_password: next }));
      pwForm.reset();
      pwStatus.textContent = 'Password changed. Your other sessions were signed out.';
    } catch (err) {
      pwError.textContent = err.code === 'invalid_credentials' ? 'The current password is not right.' : describeError(err, 'Could not change the password.');
      pwError.hidden = false;
    }
  });
  const password = section('Password', 'Changing it signs you out everywhere else.', pwForm);

  // Alerts
  const tone = me.organization.alert_tone;
  const muteStatus = h('p', { class: 'form-status', role: 'status' });
  const mute = toggle('Play the alert tone for new messages', {
    checked: !me.settings.alert_muted,
    hint: `Your organization's tone is ${toneLabel(tone)}.`,
    testId: 'alert-toggle',
    onChange: async (on, input) => {
      input.disabled = true;
      muteStatus.textContent = '';
      try {
        await app.setMuted(!on);
        muteStatus.textContent = on ? 'Alert tone on.' : 'Alert tone muted.';
      } catch (err) {
        input.checked = !on;
        muteStatus.textContent = describeError(err, 'Could not save.');
      } finally {
        input.disabled = false;
      }
    },
  });
  const preview = h('button', { class: 'button', type: 'button' }, icon('play', { size: 14 }), `Play ${toneLabel(tone)}`);
  preview.addEventListener('click', () => playTone(tone, { force: true }));

  const notifyStatus = h('p', { class: 'form-status', role: 'status' });
  const notifications = toggle('Browser notifications', {
    checked: notificationsEnabled(),
    hint: 'Shows new messages while Switchboard is in the background. Stored on this device.',
    testId: 'notifications-toggle',
    onChange: async (on, input) => {
      notifyStatus.textContent = '';
      if (!on) {
        disableNotifications();
        notifyStatus.textContent = 'Notifications off.';
        return;
      }
      const result = await enableNotifications();
      if (result !== 'granted') {
        input.checked = false;
        notifyStatus.textContent = result === 'unsupported'
          ? 'This browser does not support notifications.'
          : 'The browser blocked notifications. Allow them in the site settings, then try again.';
      } else {
        notifyStatus.textContent = 'Notifications on.';
      }
    },
  });
  if (!notificationsSupported()) notifications.input.disabled = true;

  const alerts = section('Alerts', null, mute.row, h('div', { class: 'form-actions' }, preview, muteStatus), notifications.row, notifyStatus);

  // Texting: the number new texts go out from.
  const textingBody = h('div', { class: 'stack' }, h('p', { class: 'table-status', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading your numbers…'));
  const texting = section('Texting', null, textingBody);
  function showNumbers(numbers) {
    const usable = numbers.filter((n) => n.sms_enabled);
    if (!usable.length) {
      replace(textingBody, h('p', { class: 'form-status', dataset: { testid: 'no-sms-number' } }, 'You have no SMS-enabled number. Ask an administrator to assign one.'));
      return;
    }
    const id = uid('default-number');
    const status = h('p', { class: 'form-status', role: 'status' });
    const select = h('select', { id, name: 'default_number' }, usable.map((n) => h('option', { value: String(n.id), selected: n.default }, n.display)));
    if (!usable.some((n) => n.default)) select.prepend(h('option', { value: '', selected: true, disabled: true }, 'Choose a number'));
    select.addEventListener('change', async () => {
      if (!select.value) return;
      select.disabled = true;
      status.textContent = '';
      try {
        const data = await api.put('/me/numbers/default', { number_id: Number(select.value) });
        const chosen = (data?.numbers || []).find((n) => n.default);
        status.textContent = chosen ? `New texts go out from ${chosen.display}.` : 'Saved.';
        select.querySelector('option[value=""]')?.remove();
      } catch (err) {
        status.textContent = describeError(err, 'Could not save the default number.');
      } finally {
        select.disabled = false;
        select.focus();
      }
    });
    replace(textingBody, h('div', { class: 'field narrow-field' }, h('label', { for: id }, 'Default number for new texts'), select), status);
  }
  api.get('/me/numbers')
    .then((data) => showNumbers(data?.numbers || []))
    .catch((err) => replace(textingBody, h('p', { class: 'form-error', role: 'alert' }, describeError(err, 'Could not load your numbers.'))));

  const el = h('main', { class: 'page' }, h('div', { class: 'page-inner' }, h('h1', { class: 'page-title' }, 'Settings'), account, texting, alerts, password));
  return { el, destroy() {} };
}
