// "+ New": start a chat with a colleague, create a group, or text a
// customer from one of my business numbers.

import { h, uid, replace } from '../dom.js';
import { icon } from '../icons.js';
import { go } from '../router.js';
import { describeError } from '../api.js';
import { phoneDisplay } from '../format.js';
import { openDialog, withBusy } from './dialog.js';
import { createDirectoryPicker } from './directory-picker.js';

export function createNewMenu(app) {
  const menuId = uid('new-menu');
  const button = h('button', { class: 'button primary new-button', type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId }, icon('plus', { size: 16 }), 'New');
  const chat = h('button', { class: 'menu-item', type: 'button', role: 'menuitem', tabindex: '-1' }, icon('message', { size: 16 }), h('span', null, h('strong', null, 'Chat'), h('small', null, 'Message one colleague')));
  const group = h('button', { class: 'menu-item', type: 'button', role: 'menuitem', tabindex: '-1' }, icon('users', { size: 16 }), h('span', null, h('strong', null, 'Group'), h('small', null, 'Name it and add people')));
  const smsText = h('small');
  const sms = h('button', { class: 'menu-item', type: 'button', role: 'menuitem', tabindex: '-1', 'data-testid': 'new-sms' }, icon('mobile', { size: 16 }), h('span', null, h('strong', null, 'SMS'), smsText));
  const menu = h('div', { class: 'menu', id: menuId, role: 'menu', 'aria-label': 'New conversation', hidden: true }, chat, group, sms);
  const el = h('div', { class: 'menu-wrap' }, button, menu);
  const items = [chat, group, sms];

  // Without an SMS-enabled number the item says why instead of failing later.
  function renderSms() {
    const can = app.store.smsNumbers().length > 0;
    sms.setAttribute('aria-disabled', String(!can && app.store.numbersLoaded));
    sms.classList.toggle('menu-item-explains', !can && app.store.numbersLoaded);
    smsText.textContent = can || !app.store.numbersLoaded ? 'Text a customer’s phone' : NO_SMS_NUMBER;
  }
  const offNumbers = app.store.on('numbers', renderSms);
  renderSms();

  function open() {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    chat.focus();
    document.addEventListener('pointerdown', outside, true);
    // An administrator may have assigned (or taken) a number meanwhile.
    app.loadNumbers();
  }

  function close(focusButton = true) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    if (focusButton) button.focus();
  }

  function outside(event) {
    if (!el.contains(event.target)) close(false);
  }

  button.addEventListener('click', () => (menu.hidden ? open() : close()));
  button.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown') {
      event.preventDefault();
      open();
    }
  });
  menu.addEventListener('keydown', (event) => {
    const index = items.indexOf(document.activeElement);
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const next = (index + (event.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      items[next].focus();
    } else if (event.key === 'Tab') {
      close(false);
    }
  });
  chat.addEventListener('click', () => {
    close(false);
    openNewChat(app);
  });
  group.addEventListener('click', () => {
    close(false);
    openNewGroup(app);
  });
  sms.addEventListener('click', () => {
    if (sms.getAttribute('aria-disabled') === 'true') return;
    close(false);
    openNewSms(app);
  });

  return {
    el,
    destroy: () => {
      offNumbers();
      document.removeEventListener('pointerdown', outside, true);
    },
  };
}

const NO_SMS_NUMBER = 'You have no SMS-enabled number. Ask an administrator to assign one.';

/** A business number as people read it. */
function numberLabel(number) {
  return number.display || phoneDisplay(number.number);
}

export function openNewSms(app) {
  const numbers = app.store.smsNumbers();
  const toId = uid('sms-to');
  const toHintId = uid('sms-to-hint');
  const toErrorId = uid('sms-to-error');
  const to = h('input', { id: toId, name: 'to', type: 'tel', inputmode: 'tel', autocomplete: 'off', required: true, placeholder: 'e.g. (415) 555-2671', 'aria-describedby': toHintId });
  const toError = h('p', { class: 'field-error', id: toErrorId, role: 'alert', hidden: true });
  const fromId = uid('sms-from');
  const from = h('select', { id: fromId, name: 'from' }, numbers.map((n) => h('option', { value: String(n.id), selected: Boolean(n.default) }, `${numberLabel(n)}${n.default ? ' (default)' : ''}`)));
  const fromField = numbers.length > 1 ? h('div', { class: 'field' }, h('label', { for: fromId }, 'From'), from) : null;
  const single = numbers.length === 1 ? h('p', { class: 'field-hint sms-from-single' }, `From your number ${numberLabel(numbers[0])}`) : null;
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const start = h('button', { class: 'button primary', type: 'submit' }, 'Start texting');
  const cancel = h('button', { class: 'button', type: 'button' }, 'Cancel');
  const form = h(
    'form',
    { class: 'group-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: toId }, 'To'), to, h('p', { class: 'field-hint', id: toHintId }, 'The customer’s mobile number. Local numbers are fine.'), toError),
    fromField,
    single,
    error,
    h('div', { class: 'dialog-actions' }, cancel, start),
  );
  // Numbers not known (they could not be loaded): the server picks my default.
  const canTry = numbers.length > 0 || !app.store.numbersLoaded;
  const content = canTry
    ? form
    : h('div', null, h('p', { class: 'form-notice', role: 'status' }, NO_SMS_NUMBER), h('div', { class: 'dialog-actions' }, cancel));
  const dialog = openDialog({ title: 'New text message', content, description: canTry ? 'If you already text this number from the same business number, that conversation opens.' : null });
  cancel.addEventListener('click', () => dialog.close());

  function fieldError(text) {
    toError.textContent = text || '';
    toError.hidden = !text;
    if (text) {
      to.setAttribute('aria-invalid', 'true');
      to.setAttribute('aria-describedby', `${toHintId} ${toErrorId}`);
    } else {
      to.removeAttribute('aria-invalid');
      to.setAttribute('aria-describedby', toHintId);
    }
  }

  to.addEventListener('input', () => fieldError(''));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    fieldError('');
    const number = to.value.trim();
    if (!number) {
      fieldError('Type the phone number to text.');
      to.focus();
      return;
    }
    const fromNumberId = numbers.length > 1 ? Number(from.value) : numbers[0]?.id ?? null;
    try {
      await withBusy(start, async () => {
        const conversation = await app.createSms(number, fromNumberId);
        dialog.close();
        go('messages', conversation.id);
      });
    } catch (err) {
      if (err?.status === 422) {
        // The message names the field, which the error sits under already.
        const text = describeError(err, 'That is not a phone number that can get texts.').replace(/^to:\s*/i, '');
        fieldError(text.charAt(0).toUpperCase() + text.slice(1));
        to.focus();
      } else {
        if (err?.code === 'no_sms_number') app.loadNumbers();
        replace(error, describeError(err, 'Could not start the conversation.'));
        error.hidden = false;
      }
    }
  });
  if (canTry) to.focus();
}

export function openNewChat(app) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  let dialog = null;
  const picker = createDirectoryPicker(app, {
    label: 'Search colleagues to chat with',
    onPick: async (ext, row) => {
      error.hidden = true;
      try {
        await withBusy(row, async () => {
          const conversation = await app.createDirect(ext.id);
          dialog.close();
          go('messages', conversation.id);
        });
      } catch (err) {
        error.textContent = describeError(err, 'Could not open the chat.');
        error.hidden = false;
      }
    },
  });
  dialog = openDialog({
    title: 'New chat',
    description: 'Pick a colleague. If you already have a chat together, it opens.',
    content: h('div', null, picker.el, error),
    onClose: picker.destroy,
  });
  picker.focus();
}

export function openNewGroup(app) {
  const nameId = uid('group-name');
  const name = h('input', { id: nameId, name: 'name', required: true, maxlength: '100', placeholder: 'e.g. Sales team', autocomplete: 'off' });
  const picker = createDirectoryPicker(app, { multiple: true, label: 'Search colleagues to add' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const create = h('button', { class: 'button primary', type: 'submit' }, 'Create group');
  const cancel = h('button', { class: 'button', type: 'button' }, 'Cancel');
  const form = h(
    'form',
    { class: 'group-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: nameId }, 'Group name'), name),
    h('fieldset', { class: 'field' }, h('legend', null, 'Members'), picker.el),
    error,
    h('div', { class: 'dialog-actions' }, cancel, create),
  );
  const dialog = openDialog({ title: 'New group', content: form, onClose: picker.destroy });
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const groupName = name.value.trim();
    const members = picker.selected();
    if (!groupName) {
      error.textContent = 'Give the group a name.';
      error.hidden = false;
      name.focus();
      return;
    }
    if (members.length === 0) {
      error.textContent = 'Pick at least one colleague.';
      error.hidden = false;
      return;
    }
    try {
      await withBusy(create, async () => {
        const conversation = await app.createGroup(groupName, members);
        dialog.close();
        go('messages', conversation.id);
      });
    } catch (err) {
      error.textContent = describeError(err, 'Could not create the group.');
      error.hidden = false;
    }
  });
  name.focus();
}
