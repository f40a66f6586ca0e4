// The message history of one conversation: day separators, own and others'
// bubbles, system pills, images, read receipts under my messages, delivery
// statuses under texts to customers, older messages loaded on scrolling up.

import { h, replace, linkify } from '../dom.js';
import { icon } from '../icons.js';
import { clockTime, dayKey, dayLabel, fullTime, joinNames } from '../format.js';

const RUN_GAP_MS = 5 * 60 * 1000;
/** The box an image is fitted into in a bubble, in CSS pixels. */
const IMAGE_BOX = 240;
const DELIVERY_LABELS = { queued: 'Queued', sent: 'Sent', delivered: 'Delivered', failed: 'Failed' };

/** Who wrote a message, as a key: runs of one author are grouped. */
function authorKey(message) {
  if (message.sender) return `e${message.sender.id}`;
  if (message.external_sender) return `x${message.external_sender.number}`;
  return 'system';
}

/** Width and height that fit `IMAGE_BOX`, keeping the aspect ratio. */
function fitted(attachment) {
  const { width, height } = attachment;
  if (!(width > 0 && height > 0)) return { width: IMAGE_BOX, height: Math.round(IMAGE_BOX * 0.75) };
  const scale = Math.min(1, IMAGE_BOX / Math.max(width, height));
  return { width: Math.max(48, Math.round(width * scale)), height: Math.max(48, Math.round(height * scale)) };
}
const NEAR_TOP_PX = 120;
const NEAR_BOTTOM_PX = 80;

export function createMessageList(app, conversationId) {
  const { store } = app;
  const top = h('div', { class: 'log-top' });
  const el = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0', 'data-testid': 'message-log' });
  const cache = new Map(); // domKey -> {el, sig}
  const days = new Map(); // day key -> separator element
  let firstRender = true;

  function conversation() {
    return store.conversations.get(conversationId);
  }

  function messageNode(entry, previous) {
    const mine = entry.sender?.id === store.myId;
    const current = conversation();
    const isGroup = current?.kind === 'group';
    const isSms = store.isSms(current);
    // In a text conversation a colleague's reply goes out from the business
    // too: it sits on the business side, with their name.
    const teammate = isSms && !mine && Boolean(entry.sender);
    const continues = previous && previous.kind !== 'system' && entry.kind !== 'system'
      && authorKey(previous) === authorKey(entry)
      && dayKey(previous.created_at) === dayKey(entry.created_at)
      && new Date(entry.created_at) - new Date(previous.created_at) < RUN_GAP_MS;
    const readers = mine && entry.status === 'sent' && !entry.deliveries?.length ? store.readersOf(conversationId, entry.id) : [];
    const author = store.authorOf(entry) || 'Unknown';
    const sig = JSON.stringify([entry.id, entry.kind, entry.text, entry.status, entry.error?.message, readers, continues, isGroup, isSms, author, entry.created_at, entry.attachments, entry.deliveries]);
    const cached = cache.get(entry.domKey);
    if (cached && cached.sig === sig) return cached.el;

    let node;
    if (entry.kind === 'system') {
      node = h('div', { class: 'system-msg', dataset: { messageId: String(entry.id) } }, h('span', { class: 'system-pill', title: fullTime(entry.created_at) }, entry.text));
    } else {
      const attachments = entry.attachments?.length ? h('div', { class: 'msg-attachments' }, entry.attachments.map((a) => attachmentNode(a, author))) : null;
      const text = entry.text ? h('p', { class: 'msg-text' }, linkify(entry.text)) : null;
      const bubble = h(
        'div',
        { class: `bubble${attachments ? ' has-attachments' : ''}${text ? '' : ' no-text'}` },
        attachments,
        text,
        h('time', { class: 'msg-time', datetime: entry.created_at, title: fullTime(entry.created_at) }, clockTime(entry.created_at)),
      );
      const showName = !mine && (isGroup || isSms) && !continues;
      const sender = showName ? h('div', { class: 'msg-sender' }, author) : null;
      const srName = h('span', { class: 'visually-hidden' }, mine ? 'You: ' : `${author}: `);
      const side = mine ? 'mine' : teammate ? 'theirs teammate' : 'theirs';
      node = h(
        'div',
        {
          class: `msg ${side}${continues ? ' continues' : ''}${entry.status !== 'sent' ? ` ${entry.status}` : ''}`,
          dataset: { key: entry.domKey, messageId: entry.id != null ? String(entry.id) : '' },
        },
        sender,
        srName,
        bubble,
        mine ? statusLine(entry, readers) : teammate && entry.deliveries?.length ? deliveryLine(entry) : null,
      );
    }
    cache.set(entry.domKey, { el: node, sig });
    const previousNode = cached?.el;
    if (previousNode && previousNode.parentNode === el) previousNode.replaceWith(node);
    return node;
  }

  function attachmentNode(attachment, author) {
    const size = fitted(attachment);
    const box = (className, label, ...children) => {
      const node = h('div', { class: `attachment ${className}`, role: 'img', 'aria-label': label }, ...children);
      node.style.width = `${size.width}px`;
      node.style.height = `${size.height}px`;
      return node;
    };
    if (attachment.state === 'pending') {
      return box('attachment-pending', `Image from ${author}, loading`, h('span', { class: 'spinner', 'aria-hidden': 'true' }));
    }
    const failed = () => box('attachment-failed', 'Image could not be fetched', icon('imageOff', { size: 22 }), h('span', { 'aria-hidden': 'true' }, 'Image could not be fetched'));
    if (attachment.state === 'failed' || !attachment.url) return failed();
    const img = h('img', { src: attachment.url, alt: `Image from ${author}`, width: String(size.width), height: String(size.height), loading: 'lazy', decoding: 'async' });
    const link = h('a', { class: 'attachment attachment-ready', href: attachment.url, target: '_blank', rel: 'noopener noreferrer', title: 'Open the original in a new tab' }, img);
    link.style.width = `${size.width}px`;
    link.style.height = `${size.height}px`;
    img.addEventListener('error', () => {
      if (link.isConnected) link.replaceWith(failed());
    }, { once: true });
    return link;
  }

  /** Under a text to customers: where each text is ("Delivered", "Failed — reason"). */
  function deliveryLine(entry) {
    const deliveries = entry.deliveries || [];
    const many = deliveries.length > 1;
    const conversationNow = conversation();
    const parts = deliveries.map((d) => {
      const label = DELIVERY_LABELS[d.status] || d.status;
      const text = d.status === 'failed' ? `${label} — ${d.reason || 'the carrier gave no reason'}` : label;
      const who = many ? `${conversationNow?.externals?.find((x) => x.number === d.to)?.display || d.to}: ` : '';
      return h('span', { class: `delivery delivery-${d.status}`, 'data-testid': 'delivery', dataset: { status: d.status } }, `${who}${text}`);
    });
    const anyFailed = deliveries.some((d) => d.status === 'failed');
    const allDelivered = deliveries.every((d) => d.status === 'delivered');
    const allQueued = deliveries.every((d) => d.status === 'queued');
    const iconName = anyFailed ? 'alert' : allDelivered ? 'checks' : allQueued ? 'clock' : 'check';
    return h('div', { class: `msg-status delivery-status${anyFailed ? ' failed' : ''}${allDelivered ? ' read' : ''}` }, icon(iconName, { size: 14 }), parts);
  }

  function statusLine(entry, readers) {
    if (entry.status === 'sending') {
      return h('div', { class: 'msg-status' }, h('span', { class: 'spinner tiny', 'aria-hidden': 'true' }), 'Sending…');
    }
    if (entry.status === 'failed') {
      const retry = h('button', { class: 'link-button retry', type: 'button' }, icon('retry', { size: 14 }), 'Retry');
      retry.addEventListener('click', () => app.retry(entry));
      const why = entry.error?.isNetwork ? 'Not sent — no connection.' : `Not sent${entry.error?.message ? ` — ${entry.error.message}` : '.'}`;
      return h('div', { class: 'msg-status failed', role: 'alert' }, icon('alert', { size: 14 }), h('span', null, why), retry);
    }
    if (entry.deliveries?.length) return deliveryLine(entry);
    if (readers.length) {
      return h('div', { class: 'msg-status read', 'data-testid': 'receipt' }, icon('checks', { size: 14 }), h('span', null, `Read by ${joinNames(readers, 4)}`));
    }
    return h('div', { class: 'msg-status' }, icon('check', { size: 14 }), h('span', null, 'Sent'));
  }

  function daySeparator(iso) {
    const key = dayKey(iso);
    let node = days.get(key);
    const label = dayLabel(iso);
    if (!node) {
      node = h('div', { class: 'day-separator', role: 'separator' }, h('span', null, label));
      days.set(key, node);
    } else if (node.textContent !== label) {
      replace(node, h('span', null, label));
    }
    return node;
  }

  function renderTop(thread) {
    if (thread.loadingOlder) {
      replace(top, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', null, 'Loading older messages…'));
    } else if (thread.hasMoreBefore) {
      const more = h('button', { class: 'link-button', type: 'button' }, 'Load older messages');
      more.addEventListener('click', () => app.loadOlder(conversationId));
      replace(top, more);
    } else if (thread.entries.length) {
      replace(top, h('span', { class: 'log-start' }, 'This is the beginning of the conversation.'));
    } else {
      replace(top);
    }
  }

  function render() {
    const thread = store.thread(conversationId);
    if (!thread.loaded) {
      replace(el, h('div', { class: 'log-loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading messages…'));
      return;
    }
    const distanceFromBottom = el.scrollHeight - el.scrollTop - el.clientHeight;
    const wasAtBottom = firstRender || distanceFromBottom < NEAR_BOTTOM_PX;
    const anchor = el.querySelector('.msg, .system-msg');
    const anchorTop = anchor ? anchor.getBoundingClientRect().top : null;
    const lastBefore = el.lastElementChild;

    renderTop(thread);
    const nodes = [top];
    let previous = null;
    let currentDay = null;
    for (const entry of thread.entries) {
      const key = dayKey(entry.created_at);
      if (key !== currentDay) {
        nodes.push(daySeparator(entry.created_at));
        currentDay = key;
        previous = null;
      }
      nodes.push(messageNode(entry, previous));
      previous = entry;
    }
    if (thread.entries.length === 0) {
      nodes.push(h('div', { class: 'empty-state log-empty' }, icon('message', { size: 28 }), h('p', { class: 'empty-title' }, 'No messages yet'), h('p', null, 'Say hello — your message appears here.')));
    }

    nodes.forEach((node, index) => {
      if (el.children[index] !== node) el.insertBefore(node, el.children[index] || null);
    });
    while (el.children.length > nodes.length) el.lastElementChild.remove();
    const live = new Set(thread.entries.map((e) => e.domKey));
    for (const key of cache.keys()) if (!live.has(key)) cache.delete(key);

    const lastEntry = thread.entries[thread.entries.length - 1];
    const grewAtEnd = el.lastElementChild !== lastBefore;
    if (wasAtBottom || (grewAtEnd && lastEntry?.sender?.id === store.myId && lastEntry.status === 'sending')) {
      el.scrollTop = el.scrollHeight;
    } else if (anchor && anchor.isConnected && anchorTop !== null) {
      // Older messages went in above: keep what the user was reading in place.
      el.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
    }
    firstRender = false;
    maybeLoadOlder();
  }

  function maybeLoadOlder() {
    const thread = store.thread(conversationId);
    if (thread.loaded && thread.hasMoreBefore && !thread.loadingOlder && el.scrollTop < NEAR_TOP_PX) {
      app.loadOlder(conversationId);
    }
  }

  el.addEventListener('scroll', maybeLoadOlder, { passive: true });
  const onResize = () => {
    if (el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX * 2) el.scrollTop = el.scrollHeight;
  };
  const resizeObserver = new ResizeObserver(onResize);
  resizeObserver.observe(el);

  const offs = [
    store.on('messages', (id) => id === conversationId && render()),
    store.on('receipts', (id) => id === conversationId && render()),
    store.on('conversations', () => {
      const c = conversation();
      el.setAttribute('aria-label', c ? `Messages in ${store.titleOf(c)}` : 'Messages');
    }),
  ];
  const c = conversation();
  el.setAttribute('aria-label', c ? `Messages in ${store.titleOf(c)}` : 'Messages');
  render();

  return {
    el,
    render,
    destroy: () => {
      offs.forEach((off) => off());
      resizeObserver.disconnect();
    },
  };
}
