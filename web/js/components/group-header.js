// Group actions in the conversation header: Rename, Add participants,
// Members (with Remove), Leave.

import { h, replace, avatar, uid } from '../dom.js';
import { icon } from '../icons.js';
import { go } from '../router.js';
import { describeError } from '../api.js';
import { openDialog, confirmDialog, withBusy } from './dialog.js';
import { createDirectoryPicker } from './directory-picker.js';

export function createGroupActions(app, conversationId) {
  const { store } = app;
  const conversation = () => store.conversations.get(conversationId);

  const action = (name, label, iconName, onClick) => {
    const button = h('button', { class: 'button ghost header-action', type: 'button', dataset: { action: name }, title: label }, icon(iconName, { size: 16 }), h('span', { class: 'action-label' }, label));
    button.addEventListener('click', onClick);
    return button;
  };

  const membersLabel = h('span', { class: 'action-label' });
  const members = h('button', { class: 'button ghost header-action', type: 'button', dataset: { action: 'members' } }, icon('users', { size: 16 }), membersLabel);
  members.addEventListener('click', () => openMembers(app, conversationId));

  const el = h(
    'div',
    { class: 'header-actions', role: 'toolbar', 'aria-label': 'Group actions' },
    action('rename', 'Rename', 'pencil', () => openRename(app, conversationId)),
    action('add', 'Add participants', 'userPlus', () => openAdd(app, conversationId)),
    members,
    action('leave', 'Leave', 'leave', async () => {
      const c = conversation();
      const ok = await confirmDialog({ title: 'Leave group?', text: `You will stop receiving messages from “${store.titleOf(c)}”.`, confirm: 'Leave group', danger: true });
      if (!ok) return;
      try {
        await app.leave(conversationId);
        go('messages');
        app.toast(`You left “${store.titleOf(c)}”.`);
      } catch (err) {
        app.toast(describeError(err, 'Could not leave the group.'), 'error');
      }
    }),
  );

  function update() {
    const c = conversation();
    if (!c) return;
    const n = c.participants.length;
    membersLabel.textContent = `${n} member${n === 1 ? '' : 's'}`;
    members.setAttribute('aria-label', `Members (${n})`);
  }
  const off = store.on('conversations', update);
  update();
  return { el, destroy: off };
}

function openRename(app, conversationId) {
  const { store } = app;
  const current = store.conversations.get(conversationId);
  const id = uid('rename');
  const input = h('input', { id, value: current?.name || '', required: true, maxlength: '100', autocomplete: 'off' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const save = h('button', { class: 'button primary', type: 'submit' }, 'Rename');
  const cancel = h('button', { class: 'button', type: 'button' }, 'Cancel');
  const form = h('form', { novalidate: true }, h('div', { class: 'field' }, h('label', { for: id }, 'Group name'), input), error, h('div', { class: 'dialog-actions' }, cancel, save));
  const dialog = openDialog({ title: 'Rename group', content: form, className: 'dialog-small' });
  cancel.addEventListener('click', () => dialog.close());
  input.select();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      error.textContent = 'The name cannot be empty.';
      error.hidden = false;
      return;
    }
    if (name === current?.name) {
      dialog.close();
      return;
    }
    try {
      await withBusy(save, () => app.rename(conversationId, name));
      dialog.close();
    } catch (err) {
      error.textContent = describeError(err, 'Could not rename the group.');
      error.hidden = false;
    }
  });
}

function openAdd(app, conversationId) {
  const { store } = app;
  const current = store.conversations.get(conversationId);
  const picker = createDirectoryPicker(app, { multiple: true, exclude: current.participants.map((p) => p.id), label: 'Search colleagues to add' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const add = h('button', { class: 'button primary', type: 'submit' }, 'Add');
  const cancel = h('button', { class: 'button', type: 'button' }, 'Cancel');
  const form = h('form', { novalidate: true }, picker.el, error, h('div', { class: 'dialog-actions' }, cancel, add));
  const dialog = openDialog({ title: `Add people to ${store.titleOf(current)}`, content: form, onClose: picker.destroy });
  cancel.addEventListener('click', () => dialog.close());
  picker.focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const ids = picker.selected();
    if (ids.length === 0) {
      error.textContent = 'Pick at least one colleague.';
      error.hidden = false;
      return;
    }
    try {
      await withBusy(add, () => app.addParticipants(conversationId, ids));
      dialog.close();
    } catch (err) {
      error.textContent = describeError(err, 'Could not add them.');
      error.hidden = false;
    }
  });
}

function openMembers(app, conversationId) {
  const { store } = app;
  const list = h('ul', { class: 'member-list', 'aria-label': 'Members' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });

  function render() {
    const c = store.conversations.get(conversationId);
    if (!c) {
      dialog?.close();
      return;
    }
    const people = [...c.participants].sort((a, b) => (a.id === store.myId ? -1 : b.id === store.myId ? 1 : a.name.localeCompare(b.name)));
    replace(
      list,
      people.map((p) => {
        const me = p.id === store.myId;
        const remove = me ? null : h('button', { class: 'button small', type: 'button', 'aria-label': `Remove ${p.name}`, dataset: { removeId: String(p.id) } }, icon('userMinus', { size: 14 }), 'Remove');
        remove?.addEventListener('click', async () => {
          error.hidden = true;
          try {
            await withBusy(remove, () => app.removeParticipant(conversationId, p.id));
          } catch (err) {
            error.textContent = describeError(err, `Could not remove ${p.name}.`);
            error.hidden = false;
          }
        });
        return h('li', { class: 'member-row' }, avatar(p.name, p.id, 'avatar-small'), h('span', { class: 'member-name' }, me ? `${p.name} (you)` : p.name), h('span', { class: 'member-ext' }, `Ext. ${p.number}`), remove);
      }),
    );
  }

  const addMore = h('button', { class: 'button', type: 'button' }, icon('userPlus', { size: 16 }), 'Add participants');
  let dialog = null;
  const off = store.on('conversations', render);
  render();
  dialog = openDialog({ title: 'Members', content: h('div', null, list, error, h('div', { class: 'dialog-actions' }, addMore)), onClose: off });
  addMore.addEventListener('click', () => {
    dialog.close();
    openAdd(app, conversationId);
  });
}
