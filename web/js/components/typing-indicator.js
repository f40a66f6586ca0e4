// "Bob is typing" with animated dots, at the bottom of a conversation.

import { h, replace } from '../dom.js';
import { joinNames, firstName } from '../format.js';

export function createTypingIndicator(app, conversationId) {
  const { store } = app;
  const text = h('span', { class: 'typing-text' });
  const el = h('div', { class: 'typing', 'aria-live': 'polite', 'data-testid': 'typing' });
  const dots = h('span', { class: 'typing-dots', 'aria-hidden': 'true' }, h('span'), h('span'), h('span'));

  function render() {
    const names = store.typists(conversationId);
    if (names.length === 0) {
      el.classList.remove('active');
      replace(el);
      return;
    }
    const who = names.length > 2 ? 'Several people are' : `${joinNames(names.map(firstName))} ${names.length === 1 ? 'is' : 'are'}`;
    text.textContent = `${who} typing`;
    el.classList.add('active');
    if (!el.contains(dots)) replace(el, h('span', { class: 'typing-bubble' }, dots), text);
  }

  const off = store.on('typing', (id) => id === conversationId && render());
  render();
  return { el, destroy: off };
}
