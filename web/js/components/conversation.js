// One open conversation: header (with group actions, or the business number
// a text conversation goes out from), history, typing indicator and the
// message box.

import { h, replace, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { href } from '../router.js';
import { createMessageList } from './message-list.js';
import { createCompose } from './compose.js';
import { createTypingIndicator } from './typing-indicator.js';
import { createGroupActions } from './group-header.js';
import { phoneDisplay } from '../format.js';

const BADGES = { direct: 'CHAT', group: 'GROUP', sms: 'SMS', queue: 'SMS' };

export function createConversation(app, conversationId) {
  const { store } = app;
  const conversation = () => store.conversations.get(conversationId);
  const c = conversation();
  const title = store.titleOf(c);

  const back = h('a', { class: 'icon-button back-button', href: href('messages'), 'aria-label': 'Back to conversations' }, icon('back', { size: 20 }));
  const heading = h('h2', { class: 'conversation-title' });
  const subtitle = h('p', { class: 'conversation-subtitle' });
  const face = h('span', { class: 'conversation-face' });
  const groupActions = c.kind === 'group' ? createGroupActions(app, conversationId) : null;
  const list = createMessageList(app, conversationId);
  const typing = createTypingIndicator(app, conversationId);
  const el = h(
    'section',
    { class: 'conversation', 'aria-label': `Conversation: ${title}`, dataset: { conversationId: String(conversationId) } },
    h('header', { class: 'conversation-header' }, back, face, h('div', { class: 'conversation-heading' }, heading, subtitle), groupActions?.el),
    list.el,
    typing.el,
  );
  const compose = createCompose(app, conversationId, { label: `Message ${title}`, dropZone: el });
  el.append(compose.el);

  function updateHeader() {
    const current = conversation();
    if (!current) return;
    const name = store.titleOf(current);
    heading.replaceChildren(h('span', { class: `badge badge-${current.kind}` }, BADGES[current.kind] || current.kind), ' ', h('span', { class: 'conversation-name' }, name));
    const others = store.otherParticipants(current);
    if (store.isSms(current)) {
      const business = current.business_number;
      const via = business ? `via ${business.display || phoneDisplay(business.number)}` : '';
      const external = current.externals[0];
      // A customer known by name (once contacts exist) still shows the number.
      const number = external?.display && !/\d/.test(external.display) ? phoneDisplay(external.number) : '';
      subtitle.textContent = [number, via].filter(Boolean).join(' · ');
      replace(face, h('span', { class: 'avatar avatar-sms', 'aria-hidden': 'true' }, icon('mobile', { size: 18 })));
      if (current.externals.some((x) => x.opted_out)) heading.append(h('span', { class: 'pill pill-off opted-out-pill' }, 'Opted out'));
    } else if (current.kind === 'group') {
      const names = current.participants.map((p) => (p.id === store.myId ? 'You' : p.name));
      subtitle.textContent = names.join(', ');
      replace(face, h('span', { class: 'avatar avatar-group', 'aria-hidden': 'true' }, icon('users', { size: 18 })));
    } else {
      const other = others[0];
      subtitle.textContent = other ? `Extension ${other.number}` : '';
      replace(face, avatar(name, other?.id));
    }
    el.setAttribute('aria-label', `Conversation: ${name}`);
    compose.input.setAttribute('aria-label', `Message ${name}`);
  }

  const off = store.on('conversations', updateHeader);
  updateHeader();
  app.openConversation(conversationId).catch(() => {});
  queueMicrotask(() => {
    // On a phone the keyboard would cover the history; focus only on wide screens.
    if (window.matchMedia('(min-width: 700px)').matches) compose.focus();
  });

  return {
    el,
    destroy() {
      off();
      list.destroy();
      typing.destroy();
      compose.destroy();
      groupActions?.destroy();
    },
  };
}
