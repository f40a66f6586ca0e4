// Client state: who I am, the directory, my conversations, their messages,
// read positions and who is typing. Views subscribe to change events:
//   'me', 'directory', 'numbers', 'conversations', 'messages' (conversationId),
//   'receipts' (conversationId), 'typing' (conversationId), 'unread',
//   'connection', 'route'.

import { Emitter } from './events.js';
import { phoneDisplay } from './format.js';

const TYPING_FALLBACK_MS = 8000;

/** Messages of one conversation, ordered by id; unsent ones last. */
class Thread {
  constructor() {
    this.entries = [];
    this.byId = new Map();
    this.pendingByKey = new Map();
    this.loaded = false;
    this.loading = false;
    this.hasMoreBefore = false;
    this.loadingOlder = false;
    this.seq = 0;
  }

  get newestId() {
    for (let i = this.entries.length - 1; i >= 0; i -= 1) {
      if (this.entries[i].id != null) return this.entries[i].id;
    }
    return null;
  }

  get oldestId() {
    for (const entry of this.entries) if (entry.id != null) return entry.id;
    return null;
  }

  sort() {
    this.entries.sort((a, b) => {
      const ai = a.id ?? Number.MAX_SAFE_INTEGER;
      const bi = b.id ?? Number.MAX_SAFE_INTEGER;
      return ai - bi || a.seq - b.seq;
    });
  }
}

export class Store extends Emitter {
  constructor() {
    super();
    this.reset();
  }

  reset() {
    this.me = null; // {extension, organization, settings}
    this.directory = new Map(); // extension id -> extension
    this.directorySignature = null;
    this.numbers = []; // business numbers I may text from (GET /me/numbers)
    this.numbersLoaded = false;
    this.conversations = new Map(); // id -> conversation
    this.conversationsLoaded = false;
    this.threads = new Map(); // conversation id -> Thread
    this.earlyDeliveries = new Map(); // message id -> statuses that came before the message
    this.receipts = new Map(); // conversation id -> Map(extension id -> last read id)
    this.typing = new Map(); // conversation id -> Map(extension id -> timer)
    this.activeConversationId = null;
    this.connection = 'connecting';
    this.route = { name: 'messages', id: null };
  }

  get myId() {
    return this.me?.extension?.id ?? null;
  }

  get isAdmin() {
    return this.me?.extension?.role === 'admin';
  }

  setMe(me) {
    this.me = me;
    this.emit('me', me);
  }

  setDirectory(list) {
    const signature = JSON.stringify(list);
    if (signature === this.directorySignature) return;
    this.directorySignature = signature;
    this.directory = new Map(list.map((ext) => [ext.id, ext]));
    this.emit('directory');
  }

  setNumbers(list) {
    this.numbers = list;
    this.numbersLoaded = true;
    this.emit('numbers');
  }

  /** My numbers that can text, the default first. */
  smsNumbers() {
    return this.numbers.filter((n) => n.sms_enabled).sort((a, b) => Number(Boolean(b.default)) - Number(Boolean(a.default)));
  }

  nameOf(extensionId) {
    if (extensionId === this.myId) return this.me.extension.name;
    const ext = this.directory.get(extensionId);
    if (ext) return ext.name;
    for (const conversation of this.conversations.values()) {
      const p = conversation.participants?.find((x) => x.id === extensionId);
      if (p) return p.name;
    }
    return `Extension ${extensionId}`;
  }

  // ---- conversations ----

  setConversations(list) {
    this.conversations = new Map(list.map((c) => [c.id, normalizeConversation(c)]));
    this.conversationsLoaded = true;
    this.emit('conversations');
    this.emit('unread');
  }

  /** Adds or updates a conversation; keeps what the event does not carry. */
  upsertConversation(conversation) {
    const previous = this.conversations.get(conversation.id);
    const merged = normalizeConversation({
      ...previous,
      ...conversation,
      last_message: conversation.last_message !== undefined ? conversation.last_message : previous?.last_message ?? null,
      unread_count: conversation.unread_count ?? previous?.unread_count ?? 0,
    });
    if (previous && previous.last_activity_at > merged.last_activity_at) {
      merged.last_activity_at = previous.last_activity_at;
    }
    this.conversations.set(conversation.id, merged);
    this.emit('conversations');
    this.emit('unread');
    return merged;
  }

  removeConversation(id) {
    if (!this.conversations.delete(id)) return;
    this.threads.delete(id);
    this.receipts.delete(id);
    this.clearTypingFor(id);
    this.emit('conversations');
    this.emit('unread');
  }

  /** Conversations by latest activity, newest first. */
  sortedConversations() {
    return [...this.conversations.values()].sort((a, b) => {
      const at = a.last_activity_at || a.created_at || '';
      const bt = b.last_activity_at || b.created_at || '';
      return at < bt ? 1 : at > bt ? -1 : b.id - a.id;
    });
  }

  /** What to call a conversation in lists and headers. */
  titleOf(conversation) {
    if (!conversation) return '';
    if (conversation.kind === 'direct') {
      const other = conversation.participants?.find((p) => p.id !== this.myId);
      return other?.name || conversation.name || 'Direct chat';
    }
    if (conversation.kind === 'sms' || conversation.kind === 'queue') {
      const external = conversation.externals?.[0];
      if (conversation.name) return conversation.name;
      if (external) return external.display || phoneDisplay(external.number);
      return 'Text messages';
    }
    return conversation.name || 'Untitled group';
  }

  /** Whether a conversation texts customers (its messages go out by SMS). */
  isSms(conversation) {
    return Boolean(conversation && (conversation.kind === 'sms' || conversation.kind === 'queue' || conversation.externals?.length));
  }

  /** Who wrote a message, for people: a colleague, a customer, or nobody. */
  authorOf(message) {
    if (message.sender) return message.sender.id === this.myId ? this.me.extension.name : message.sender.name || this.nameOf(message.sender.id);
    if (message.external_sender) return message.external_sender.display || phoneDisplay(message.external_sender.number);
    return '';
  }

  otherParticipants(conversation) {
    return (conversation?.participants || []).filter((p) => p.id !== this.myId);
  }

  setUnread(conversationId, count) {
    const conversation = this.conversations.get(conversationId);
    if (!conversation || conversation.unread_count === count) return;
    conversation.unread_count = count;
    this.emit('conversations');
    this.emit('unread');
  }

  totalUnread() {
    let total = 0;
    for (const c of this.conversations.values()) total += c.unread_count || 0;
    return total;
  }

  // ---- messages ----

  thread(conversationId) {
    let thread = this.threads.get(conversationId);
    if (!thread) {
      thread = new Thread();
      this.threads.set(conversationId, thread);
    }
    return thread;
  }

  /** History from REST; `older` when it was loaded above what we have. */
  addHistory(conversationId, messages, { hasMore, older = false, replace = false }) {
    const thread = this.thread(conversationId);
    if (replace) {
      const pending = thread.entries.filter((e) => e.id == null);
      thread.entries = pending;
      thread.byId.clear();
    }
    for (const message of messages) this.#insert(thread, message);
    thread.sort();
    if (replace || older || !thread.loaded) thread.hasMoreBefore = Boolean(hasMore);
    thread.loaded = true;
    this.emit('messages', conversationId);
  }

  /** A message from the live stream or an API answer. Returns {entry, isNew}. */
  applyMessage(message) {
    const conversationId = message.conversation_id;
    const thread = this.thread(conversationId);
    const known = thread.byId.get(message.id);
    let isNew = false;
    let entry = known;
    const key = message.idempotency_key;
    if (known && key && thread.pendingByKey.has(key) && message.sender?.id === this.myId) {
      // Already in the history: drop the optimistic copy.
      const pending = thread.pendingByKey.get(key);
      thread.pendingByKey.delete(key);
      thread.entries = thread.entries.filter((e) => e !== pending);
    }
    const keep = thread.loaded || thread.loading || (key && thread.pendingByKey.has(key));
    if (!known && keep) {
      isNew = true;
      entry = this.#insert(thread, message);
      thread.sort();
    } else if (!known) {
      // History not loaded: opening the conversation fetches it over REST.
      isNew = true;
      entry = null;
    }
    const conversation = this.conversations.get(conversationId);
    if (conversation) {
      const last = conversation.last_message;
      if (!last || last.id == null || last.id < message.id) {
        conversation.last_message = message;
        if (!conversation.last_activity_at || conversation.last_activity_at < message.created_at) {
          conversation.last_activity_at = message.created_at;
        }
      } else {
        isNew = isNew && last.id < message.id;
      }
      this.emit('conversations');
    }
    if (message.sender) this.clearTyping(conversationId, message.sender.id);
    if (thread.loaded) this.emit('messages', conversationId);
    return { entry, isNew };
  }

  /**
   * A changed message (`message.updated`): replaces what we have by id and
   * keeps its place on screen. Returns whether anything was shown.
   */
  replaceMessage(message) {
    const conversationId = message.conversation_id;
    const thread = this.threads.get(conversationId);
    const entry = thread?.byId.get(message.id);
    if (entry) {
      const { domKey, seq, deliveries } = entry;
      for (const key of Object.keys(entry)) delete entry[key];
      Object.assign(entry, message, { domKey, seq, status: 'sent', error: null });
      entry.deliveries = mergeDeliveries(deliveries, message.deliveries);
    }
    const conversation = this.conversations.get(conversationId);
    if (conversation?.last_message?.id === message.id) {
      conversation.last_message = message;
      this.emit('conversations');
    }
    if (entry) this.emit('messages', conversationId);
    return Boolean(entry);
  }

  /** A recipient's delivery status moved (`delivery.updated`); never backwards. */
  updateDelivery({ conversation_id: conversationId, message_id: messageId, to, status, reason = null }) {
    const update = { to, status, reason };
    const entry = this.threads.get(conversationId)?.byId.get(messageId);
    if (!entry) {
      // The status can overtake my own send's answer: keep it for the message.
      const early = this.earlyDeliveries.get(messageId) || [];
      this.earlyDeliveries.set(messageId, mergeDeliveries(early, [update]));
      if (this.earlyDeliveries.size > 200) this.earlyDeliveries.delete(this.earlyDeliveries.keys().next().value);
      return;
    }
    const merged = mergeDeliveries(entry.deliveries, [update]);
    if (JSON.stringify(merged) === JSON.stringify(entry.deliveries || [])) return;
    entry.deliveries = merged;
    this.emit('messages', conversationId);
  }

  /** Statuses that arrived before their message, folded into it. */
  #withEarlyDeliveries(entry) {
    const early = this.earlyDeliveries.get(entry.id);
    if (!early) return entry;
    this.earlyDeliveries.delete(entry.id);
    entry.deliveries = mergeDeliveries(entry.deliveries, early);
    return entry;
  }

  #insert(thread, message) {
    if (thread.byId.has(message.id)) return thread.byId.get(message.id);
    const key = message.idempotency_key;
    const pending = key ? thread.pendingByKey.get(key) : null;
    if (pending && message.sender?.id === this.myId) {
      // The server's copy of a message we showed optimistically.
      Object.assign(pending, message, { status: 'sent', error: null });
      thread.pendingByKey.delete(key);
      thread.byId.set(message.id, pending);
      return this.#withEarlyDeliveries(pending);
    }
    thread.seq += 1;
    const entry = { ...message, domKey: `m${message.id}`, status: 'sent', seq: thread.seq };
    thread.entries.push(entry);
    thread.byId.set(message.id, entry);
    return this.#withEarlyDeliveries(entry);
  }

  /** Shows a message of mine at once, before the server answers. */
  addPending(conversationId, text, idempotencyKey, attachments = []) {
    const thread = this.thread(conversationId);
    const delivered = thread.entries.find((e) => e.id != null && e.idempotency_key === idempotencyKey && e.sender?.id === this.myId);
    if (delivered) return delivered;
    const existing = thread.pendingByKey.get(idempotencyKey);
    if (existing) {
      existing.status = 'sending';
      existing.error = null;
      this.emit('messages', conversationId);
      return existing;
    }
    thread.seq += 1;
    const entry = {
      id: null,
      conversation_id: conversationId,
      kind: 'text',
      sender: { id: this.myId, number: this.me.extension.number, name: this.me.extension.name },
      text,
      created_at: new Date().toISOString(),
      idempotency_key: idempotencyKey,
      attachments: attachments.length ? attachments : undefined,
      domKey: `p${idempotencyKey}`,
      status: 'sending',
      error: null,
      seq: thread.seq,
    };
    thread.entries.push(entry);
    thread.pendingByKey.set(idempotencyKey, entry);
    this.emit('messages', conversationId);
    return entry;
  }

  failPending(conversationId, idempotencyKey, error) {
    const entry = this.thread(conversationId).pendingByKey.get(idempotencyKey);
    if (!entry) return;
    entry.status = 'failed';
    entry.error = error;
    this.emit('messages', conversationId);
  }

  /** Messages of mine that are not confirmed yet, oldest first. */
  pendingMessages() {
    const out = [];
    for (const thread of this.threads.values()) {
      for (const entry of thread.pendingByKey.values()) out.push(entry);
    }
    return out;
  }

  /** Forgets loaded history (after a resync); unsent messages are kept. */
  dropHistory() {
    for (const thread of this.threads.values()) {
      thread.entries = thread.entries.filter((e) => e.id == null);
      thread.byId.clear();
      thread.loaded = false;
      thread.hasMoreBefore = false;
    }
  }

  // ---- receipts ----

  setReceipts(conversationId, receipts) {
    const positions = new Map();
    for (const r of receipts) positions.set(r.extension_id, r.last_read_message_id ?? 0);
    this.receipts.set(conversationId, positions);
    this.emit('receipts', conversationId);
  }

  updateReceipt(conversationId, extensionId, lastReadId) {
    let positions = this.receipts.get(conversationId);
    if (!positions) {
      positions = new Map();
      this.receipts.set(conversationId, positions);
    }
    if ((positions.get(extensionId) ?? 0) >= lastReadId) return;
    positions.set(extensionId, lastReadId);
    this.emit('receipts', conversationId);
  }

  /** Names of the other participants who have read message `messageId`. */
  readersOf(conversationId, messageId) {
    const positions = this.receipts.get(conversationId);
    const conversation = this.conversations.get(conversationId);
    if (!positions || messageId == null) return [];
    const names = [];
    for (const [extensionId, lastRead] of positions) {
      if (extensionId === this.myId || lastRead < messageId) continue;
      if (conversation && !conversation.participants.some((p) => p.id === extensionId)) continue;
      names.push(this.nameOf(extensionId));
    }
    return names.sort((a, b) => a.localeCompare(b));
  }

  // ---- typing ----

  setTyping(conversationId, extensionId, active) {
    if (extensionId === this.myId) return;
    if (!active) {
      this.clearTyping(conversationId, extensionId);
      return;
    }
    let typists = this.typing.get(conversationId);
    if (!typists) {
      typists = new Map();
      this.typing.set(conversationId, typists);
    }
    clearTimeout(typists.get(extensionId));
    // The server says when typing stops; this only covers a lost frame.
    typists.set(extensionId, setTimeout(() => this.clearTyping(conversationId, extensionId), TYPING_FALLBACK_MS));
    this.emit('typing', conversationId);
  }

  clearTyping(conversationId, extensionId) {
    const typists = this.typing.get(conversationId);
    if (!typists || !typists.has(extensionId)) return;
    clearTimeout(typists.get(extensionId));
    typists.delete(extensionId);
    this.emit('typing', conversationId);
  }

  clearTypingFor(conversationId) {
    const typists = this.typing.get(conversationId);
    if (!typists) return;
    for (const timer of typists.values()) clearTimeout(timer);
    this.typing.delete(conversationId);
    this.emit('typing', conversationId);
  }

  typists(conversationId) {
    return [...(this.typing.get(conversationId)?.keys() || [])].map((id) => this.nameOf(id));
  }

  // ---- misc ----

  setConnection(status) {
    if (this.connection === status) return;
    this.connection = status;
    this.emit('connection', status);
  }

  setRoute(route) {
    this.route = route;
    this.activeConversationId = route.name === 'messages' ? route.id : null;
    this.emit('route', route);
  }
}

// Final states rank equal: a status never moves from one to the other.
const DELIVERY_RANK = { queued: 0, sent: 1, delivered: 2, failed: 2 };

/**
 * Delivery statuses per recipient from two sources, each recipient at the
 * furthest status either has seen: a status never moves backwards, whatever
 * order the answers and events arrive in.
 */
function mergeDeliveries(current, incoming) {
  const byRecipient = new Map();
  for (const d of current || []) byRecipient.set(d.to, d);
  for (const d of incoming || []) {
    const known = byRecipient.get(d.to);
    const rank = DELIVERY_RANK[d.status] ?? 0;
    const knownRank = known ? DELIVERY_RANK[known.status] ?? 0 : -1;
    if (!known || rank > knownRank || (known.status === d.status && d.reason && !known.reason)) byRecipient.set(d.to, { ...known, ...d });
  }
  return byRecipient.size ? [...byRecipient.values()] : current;
}

function normalizeConversation(c) {
  return {
    ...c,
    participants: c.participants || [],
    externals: c.externals || [],
    business_number: c.business_number ?? null,
    last_message: c.last_message ?? null,
    unread_count: c.unread_count ?? 0,
  };
}
