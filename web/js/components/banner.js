// A quiet bar under the header while the live connection is down.

import { h } from '../dom.js';
import { icon } from '../icons.js';

const SHOW_AFTER_MS = 1500;

export function createBanner(app) {
  const text = h('span', { class: 'banner-text' });
  const retry = h('button', { class: 'link-button', type: 'button' }, 'Retry now');
  const el = h('div', { class: 'banner', role: 'status', 'aria-live': 'polite', hidden: true }, icon('wifiOff', { size: 16 }), text, retry);
  retry.addEventListener('click', () => app.socket.reconnectNow());
  let timer = null;

  function update(status) {
    clearTimeout(timer);
    if (status === 'open') {
      el.hidden = true;
      return;
    }
    const message = status === 'offline'
      ? 'You are offline. Messages will arrive when the connection is back.'
      : 'Connection lost. Reconnecting…';
    retry.hidden = status === 'offline';
    // Brief blips (a reconnect in under a second and a half) stay invisible.
    timer = setTimeout(() => {
      text.textContent = message;
      el.hidden = false;
    }, status === 'offline' ? 0 : SHOW_AFTER_MS);
  }

  const off = app.store.on('connection', update);
  update(app.store.connection);
  return { el, destroy: () => { off(); clearTimeout(timer); } };
}
