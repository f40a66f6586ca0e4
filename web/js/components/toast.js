// Short-lived notices in the corner ("Could not load…", "Saved").

import { h } from '../dom.js';
import { icon } from '../icons.js';

export function createToasts() {
  const el = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });

  function show({ text, kind = 'info' }) {
    const close = h('button', { class: 'icon-button toast-close', type: 'button', 'aria-label': 'Dismiss' }, icon('close', { size: 16 }));
    const toast = h('div', { class: `toast toast-${kind}` }, icon(kind === 'error' ? 'alert' : 'check', { size: 18 }), h('span', { class: 'toast-text' }, text), close);
    const remove = () => toast.remove();
    close.addEventListener('click', remove);
    el.append(toast);
    setTimeout(remove, kind === 'error' ? 8000 : 4000);
  }

  return { el, show };
}
