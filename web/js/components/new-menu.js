// "+ New": start a chat with a colleague or create a group.

import { h, uid } from '../dom.js';
import { icon } from '../icons.js';
import { go } from '../router.js';
import { describeError } from '../api.js';
import { openDialog, withBusy } from './dialog.js';
import { createDirectoryPicker } from './directory-picker.js';

export function createNewMenu(app) {
  const menuId = uid('new-menu');
  const button = h('button', { class: 'button primary new-button', type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId }, icon('plus', { size: 16 }), 'New');
  const chat = h('button', { class: 'menu-item', type: 'button', role: 'menuitem', tabindex: '-1' }, icon('message', { size: 16 }), h('span', null, h('strong', null, 'Chat'), h('small', null, 'Message one colleague')));
  const group = h('button', { class: 'menu-item', type: 'button', role: 'menuitem', tabindex: '-1' }, icon('users', { size: 16 }), h('span', null, h('strong', null, 'Group'), h('small', null, 'Name it and add people')));
  const menu = h('div', { class: 'menu', id: menuId, role: 'menu', 'aria-label': 'New conversation', hidden: true }, chat, group);
  const el = h('div', { class: 'menu-wrap' }, button, menu);
  const items = [chat, group];

  function open() {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    chat.focus();
    document.addEventListener('pointerdown', outside, true);
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

  return { el, destroy: () => document.removeEventListener('pointerdown', outside, true) };
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
