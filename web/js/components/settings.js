// Settings: account details, the number my texts go out from, password
// change, alert tone mute, browser notifications.

import { h, uid, replace } from '../dom.js';
import { icon } from '../icons.js';
import { api, describeError } from '../api.js';
import { playTone, toneLabel } from '../sound.js';
import { notificationsSupported, notificationsEnabled, enableNotifications, disableNotifications } from '../notify.js';
import { withBusy } from './dialog.js';
import { NO_SMS_NUMBER, numberLabel } from './new-menu.js';

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

  const texting = createTextingSettings(app);

  const el = h('main', { class: 'page' }, h('div', { class: 'page-inner' }, h('h1', { class: 'page-title' }, 'Settings'), account, texting.el, alerts, password));
  return { el, destroy: texting.destroy };
}

/** Which of my business numbers new texts go out from. */
function createTextingSettings(app) {
  const { store } = app;
  const body = h('div', { class: 'stack' });
  const status = h('p', { class: 'form-status', role: 'status' });
  const el = section('Texting', 'New text conversations go out from your default number; an existing conversation keeps its number.', body);

  let shown = null;
  function render() {
    const numbers = store.smsNumbers();
    // Reloading the same list must not rebuild the select under the user.
    const signature = JSON.stringify([store.numbersLoaded, numbers]);
    if (signature === shown) return;
    shown = signature;
    const hadFocus = body.contains(document.activeElement);
    if (!store.numbersLoaded) {
      replace(body, h('p', { class: 'muted' }, 'Loading your numbers…'));
      return;
    }
    if (numbers.length === 0) {
      replace(body, h('p', { class: 'form-notice', 'data-testid': 'no-sms-number' }, NO_SMS_NUMBER));
      return;
    }
    if (numbers.length === 1) {
      replace(body, h('p', null, 'Your texts go out from ', h('strong', null, numberLabel(numbers[0])), '.'));
      return;
    }
    const id = uid('default-number');
    const select = h('select', { id, name: 'default_number' }, numbers.map((n) => h('option', { value: String(n.id), selected: Boolean(n.default) }, numberLabel(n))));
    select.addEventListener('change', async () => {
      status.textContent = '';
      select.disabled = true;
      try {
        const data = await api.put('/me/numbers/default', { number_id: Number(select.value) });
        if (data?.numbers) store.setNumbers(data.numbers);
        else await app.loadNumbers();
        status.textContent = `New texts go out from ${numberLabel(store.smsNumbers()[0])}.`;
      } catch (err) {
        status.textContent = describeError(err, 'Could not save.');
        await app.loadNumbers();
      } finally {
        select.disabled = false;
      }
    });
    replace(body, h('div', { class: 'tone-form' }, h('div', { class: 'field' }, h('label', { for: id }, 'Send new texts from'), select), status));
    if (hadFocus) select.focus();
  }

  const off = store.on('numbers', render);
  render();
  app.loadNumbers().then(() => {
    if (!store.numbersLoaded) replace(body, h('p', { class: 'muted' }, 'Your texting numbers could not be loaded. Reload the page to try again.'));
  });
  return { el, destroy: off };
}
