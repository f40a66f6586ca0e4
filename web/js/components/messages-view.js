// The Messages section: sidebar and the open conversation side by side, or
// as two screens with a back button on narrow displays.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { createSidebar } from './sidebar.js';
import { createConversation } from './conversation.js';
import { openNewChat } from './new-menu.js';

export function createMessagesView(app) {
  const { store } = app;
  const sidebar = createSidebar(app);
  const pane = h('div', { class: 'conversation-pane' });
  const el = h('div', { class: 'messages-view' }, sidebar.el, pane);
  let current = null; // {id, view}

  function placeholder() {
    if (!store.conversationsLoaded) return h('div', { class: 'pane-empty', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…');
    const start = h('button', { class: 'button primary', type: 'button' }, icon('plus', { size: 16 }), 'New chat');
    start.addEventListener('click', () => openNewChat(app));
    const hasAny = store.conversations.size > 0;
    return h(
      'div',
      { class: 'pane-empty empty-state' },
      icon('message', { size: 40 }),
      h('p', { class: 'empty-title' }, hasAny ? 'Pick a conversation' : 'No conversations yet'),
      h('p', null, hasAny ? 'Choose one on the left, or start a new one.' : 'Start one with + New — chat with a colleague, create a group or text a customer.'),
      start,
    );
  }

  function show() {
    const id = store.route.name === 'messages' ? store.route.id : null;
    const exists = id != null && store.conversations.has(id);
    el.classList.toggle('has-active', id != null);
    if (current && current.id === id && exists) return;
    if (current && (current.id !== id || !exists)) {
      current.view.destroy();
      current = null;
    }
    if (id != null && exists) {
      const view = createConversation(app, id);
      current = { id, view };
      pane.replaceChildren(view.el);
    } else if (id != null && !store.conversationsLoaded) {
      pane.replaceChildren(placeholder());
    } else if (id != null) {
      // Not (or no longer) one of mine.
      pane.replaceChildren(h('div', { class: 'pane-empty empty-state' }, icon('alert', { size: 32 }), h('p', { class: 'empty-title' }, 'Conversation not found'), h('p', null, 'It may have been removed, or you are no longer a participant.')));
    } else {
      pane.replaceChildren(placeholder());
    }
  }

  const offs = [store.on('route', show), store.on('conversations', show)];
  show();
  return {
    el,
    destroy() {
      offs.forEach((off) => off());
      current?.view.destroy();
      sidebar.destroy();
    },
  };
}
