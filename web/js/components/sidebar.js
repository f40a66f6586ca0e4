// The conversation list: newest activity first, with type badge, name,
// last-message preview, time and unread count; a filter box; + New.

import { h, replace, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { listTime, messageSummary } from '../format.js';
import { href } from '../router.js';
import { createNewMenu } from './new-menu.js';

const BADGES = { direct: 'CHAT', group: 'GROUP', sms: 'SMS', queue: 'SMS' };

export function createSidebar(app) {
  const { store } = app;
  const filter = h('input', { class: 'filter-input', type: 'search', placeholder: 'Filter conversations', 'aria-label': 'Filter conversations' });
  const list = h('ul', { class: 'conversation-list', 'aria-label': 'Conversations' });
  const empty = h('div', { class: 'empty-state sidebar-empty', hidden: true });
  const loading = h('div', { class: 'sidebar-loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading conversations…');
  const newMenu = createNewMenu(app);

  const el = h(
    'aside',
    { class: 'sidebar', 'aria-label': 'Conversations' },
    h('div', { class: 'sidebar-head' }, h('h1', { class: 'sidebar-title' }, 'Messages'), newMenu.el),
    h('div', { class: 'filter' }, icon('search', { size: 16, className: 'filter-icon' }), filter),
    loading,
    list,
    empty,
  );

  const rows = new Map(); // conversation id -> {li, sig}

  function preview(conversation) {
    const message = conversation.last_message;
    if (!message) return conversation.kind === 'group' ? 'Group created' : 'No messages yet';
    if (message.kind === 'system') return message.text;
    const mine = message.sender?.id === store.myId;
    // In groups and shared text conversations, say which colleague wrote it.
    const named = conversation.kind === 'group' || store.isSms(conversation);
    const who = mine ? 'You' : named && message.sender ? message.sender.name?.split(' ')[0] : null;
    const text = messageSummary(message);
    return who ? `${who}: ${text}` : text;
  }

  function face(conversation, title) {
    if (conversation.kind === 'group') return h('span', { class: 'avatar avatar-group', 'aria-hidden': 'true' }, icon('users', { size: 18 }));
    if (store.isSms(conversation)) return h('span', { class: 'avatar avatar-sms', 'aria-hidden': 'true' }, icon('mobile', { size: 18 }));
    return avatar(title, store.otherParticipants(conversation)[0]?.id);
  }

  function row(conversation) {
    const title = store.titleOf(conversation);
    const unread = conversation.unread_count || 0;
    const active = store.activeConversationId === conversation.id;
    const time = conversation.last_message?.created_at || conversation.last_activity_at || conversation.created_at;
    const text = preview(conversation);
    const sig = JSON.stringify([title, unread, active, time, text, conversation.kind]);
    const existing = rows.get(conversation.id);
    if (existing && existing.sig === sig) return existing.li;

    const badge = BADGES[conversation.kind] || String(conversation.kind || '').toUpperCase();
    const kindLabel = store.isSms(conversation) ? 'text messages' : badge.toLowerCase();
    const label = `${title}, ${kindLabel}${unread ? `, ${unread} unread` : ''}`;
    const link = h(
      'a',
      {
        class: `conversation-row${unread ? ' unread' : ''}`,
        href: href('messages', conversation.id),
        'aria-label': label,
        'aria-current': active ? 'true' : null,
        dataset: { conversationId: String(conversation.id) },
      },
      face(conversation, title),
      h(
        'span',
        { class: 'row-main' },
        h(
          'span',
          { class: 'row-top' },
          h('span', { class: `badge badge-${conversation.kind}` }, badge),
          h('span', { class: 'row-name' }, title),
          h('time', { class: 'row-time', datetime: time || '' }, listTime(time)),
        ),
        h(
          'span',
          { class: 'row-bottom' },
          h('span', { class: 'row-preview' }, text),
          unread ? h('span', { class: 'unread-count', 'aria-hidden': 'true' }, unread > 99 ? '99+' : String(unread)) : null,
        ),
      ),
    );
    const li = existing?.li || h('li', null);
    replace(li, link);
    li.dataset.conversationId = String(conversation.id);
    rows.set(conversation.id, { li, sig });
    return li;
  }

  function render() {
    loading.hidden = store.conversationsLoaded;
    const query = filter.value.trim().toLowerCase();
    const all = store.sortedConversations();
    const shown = all.filter((c) => {
      if (!query) return true;
      const names = [store.titleOf(c), ...c.participants.map((p) => `${p.name} ${p.number}`), ...c.externals.map((x) => `${x.display || ''} ${x.number}`)];
      return names.some((n) => n.toLowerCase().includes(query));
    });
    const wanted = shown.map(row);
    // Keep existing nodes (and focus) where they are; move only what changed.
    wanted.forEach((li, index) => {
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    while (list.children.length > wanted.length) list.lastElementChild.remove();
    for (const id of rows.keys()) if (!store.conversations.has(id)) rows.delete(id);

    empty.hidden = !store.conversationsLoaded || shown.length > 0;
    if (!empty.hidden) {
      if (all.length === 0) {
        replace(empty, icon('inbox', { size: 32 }), h('p', { class: 'empty-title' }, 'No conversations yet'), h('p', null, 'Start one with + New.'));
      } else {
        replace(empty, h('p', null, `No conversations match “${filter.value.trim()}”.`));
      }
    }
  }

  filter.addEventListener('input', render);
  filter.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && filter.value) {
      filter.value = '';
      render();
    }
  });
  // Arrow keys move between conversations.
  list.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    const links = [...list.querySelectorAll('.conversation-row')];
    const index = links.indexOf(document.activeElement);
    if (index < 0) return;
    event.preventDefault();
    const next = links[index + (event.key === 'ArrowDown' ? 1 : -1)];
    next?.focus();
  });

  const offs = [
    store.on('conversations', render),
    store.on('route', render),
    store.on('directory', render),
  ];
  const clock = setInterval(() => {
    rows.clear();
    render();
  }, 60_000);
  render();
  return {
    el,
    destroy: () => {
      offs.forEach((off) => off());
      clearInterval(clock);
      newMenu.destroy();
    },
  };
}
