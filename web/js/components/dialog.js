// Modal dialogs on the native <dialog> element (focus trap, Escape, backdrop).

import { h, uid } from '../dom.js';
import { icon } from '../icons.js';

/**
 * Opens a dialog. `content` is a node; `onClose` runs once when it closes.
 * Returns {el, body, close, setBusy}.
 */
export function openDialog({ title, content, className = '', onClose = null, description = null }) {
  const titleId = uid('dialog-title');
  const closeButton = h('button', { class: 'icon-button', type: 'button', 'aria-label': 'Close' }, icon('close'));
  const body = h('div', { class: 'dialog-body' }, content);
  const dialog = h(
    'dialog',
    { class: `dialog ${className}`.trim(), 'aria-labelledby': titleId },
    h('header', { class: 'dialog-header' }, h('h2', { id: titleId }, title), closeButton),
    description ? h('p', { class: 'dialog-description' }, description) : null,
    body,
  );
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    onClose?.();
  };
  closeButton.addEventListener('click', close);
  dialog.addEventListener('close', close);
  dialog.addEventListener('click', (event) => {
    // A click on the backdrop (outside the box) closes the dialog.
    if (event.target !== dialog) return;
    const rect = dialog.getBoundingClientRect();
    const inside = event.clientX >= rect.left && event.clientX <= rect.right && event.clientY >= rect.top && event.clientY <= rect.bottom;
    if (!inside) close();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = body.querySelector('input, textarea, select, button');
  first?.focus();
  return { el: dialog, body, close };
}

/** A yes/no question; resolves with true when confirmed. */
export function confirmDialog({ title, text, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', { class: danger ? 'button danger' : 'button primary', type: 'button' }, confirm);
    const no = h('button', { class: 'button', type: 'button' }, 'Cancel');
    const content = h('div', null, h('p', { class: 'confirm-text' }, text), h('div', { class: 'dialog-actions' }, no, yes));
    const dialog = openDialog({ title, content, className: 'dialog-small', onClose: () => resolve(answer) });
    yes.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    no.addEventListener('click', () => dialog.close());
    no.focus();
  });
}

/** A button that shows a spinner while `work` runs. */
export async function withBusy(button, work) {
  button.disabled = true;
  button.classList.add('busy');
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
    button.removeAttribute('aria-busy');
  }
}
