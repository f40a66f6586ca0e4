// The message box: Enter sends, Shift+Enter adds a line; drafts are kept per
// conversation; typing frames go out at most every 2 seconds.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { loadDraft, saveDraft } from '../drafts.js';

const TYPING_EVERY_MS = 2000;
const MAX_HEIGHT_PX = 180;

export function createCompose(app, conversationId, { label }) {
  const input = h('textarea', {
    class: 'compose-input',
    rows: '1',
    placeholder: 'Write a message…',
    'aria-label': label,
    maxlength: '10000',
    'data-testid': 'compose',
  });
  const send = h('button', { class: 'button primary send-button', type: 'submit', 'aria-label': 'Send message', title: 'Send (Enter)' }, icon('send', { size: 18 }));
  const hint = h('p', { class: 'compose-hint', id: `compose-hint-${conversationId}` }, 'Enter to send · Shift+Enter for a new line');
  input.setAttribute('aria-describedby', hint.id);
  const form = h('form', { class: 'compose', 'aria-label': 'Send a message' }, h('div', { class: 'compose-row' }, input, send), hint);

  let lastTypingSent = 0;
  input.value = loadDraft(conversationId);

  function autosize() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, MAX_HEIGHT_PX)}px`;
    send.disabled = input.value.trim() === '';
  }

  function submit() {
    // Leading spaces can matter (indented text); blank lines around do not.
    const text = input.value.replace(/^(\s*\n)+/, '').trimEnd();
    if (!text.trim()) return;
    input.value = '';
    saveDraft(conversationId, '');
    lastTypingSent = 0;
    autosize();
    app.send(conversationId, text);
  }

  input.addEventListener('input', () => {
    saveDraft(conversationId, input.value);
    autosize();
    const now = Date.now();
    if (input.value.trim() && now - lastTypingSent >= TYPING_EVERY_MS) {
      lastTypingSent = now;
      app.sendTyping(conversationId);
    }
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      submit();
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
    input.focus();
  });

  queueMicrotask(autosize);
  return { el: form, focus: () => input.focus({ preventScroll: true }), input };
}
