// The client's controller: signs in and out, loads state over REST, applies
// live frames from the socket to the store, and performs user actions.

import { api, upload, ApiError, mayHaveSession, setUnauthenticatedHandler } from './api.js';
import { LiveSocket } from './socket.js';
import { Store } from './store.js';
import { Emitter } from './events.js';
import { setDraftOwner, outbox } from './drafts.js';
import { playTone } from './sound.js';
import { notify } from './notify.js';
import { go } from './router.js';
import { messageSummary } from './format.js';

const READY_WAIT_MS = 3000;
const HISTORY_PAGE = 50;

/** A random idempotency key; crypto.randomUUID needs a secure context. */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Events: 'signed-in', 'signed-out' ({expired}), 'toast' ({text, kind}).
 */
export class App extends Emitter {
  constructor() {
    super();
    this.store = new Store();
    this.socket = new LiveSocket();
    this.session = 'unknown'; // 'unknown' | 'signed-out' | 'signed-in'
    this.readSent = new Map(); // conversation id -> last read id sent
    this.historyLoads = new Map(); // conversation id -> promise
    this.pendingFrames = null; // frames held back while the first load runs
    this.departed = new Set(); // conversations I left or was removed from

    setUnauthenticatedHandler(() => this.expire());
    this.socket.on('frame', (frame) => this.#onFrame(frame));
    this.socket.on('ready', ({ resumed }) => this.#onReady(resumed));
    this.socket.on('status', (status) => this.store.setConnection(status));
    this.socket.on('refused', () => this.#checkSession());
    this.socket.on('ended', () => this.expire());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.store.activeConversationId) {
        this.markRead(this.store.activeConversationId);
      }
    });
  }

  // ---- session ----

  /** On page load: resume a session if the browser seems to have one. */
  async resume() {
    if (!mayHaveSession()) {
      this.#signedOut(false);
      return;
    }
    try {
      const me = await api.get('/me', { quiet401: true });
      await this.#start(me);
    } catch (error) {
      // The browser still had the cookies, so a session ended meanwhile.
      if (error instanceof ApiError && error.status === 401) this.#signedOut(true);
      else throw error;
    }
  }

  async signIn(organization, extension, password) {
    await api.post('/auth/sign-in', { organization, extension, password });
    const me = await api.get('/me');
    await this.#start(me);
  }

  async signOut() {
    try {
      await api.post('/auth/sign-out', {}, { quiet401: true });
    } catch {
      // The session may already be gone; signing out locally is what matters.
    }
    this.#signedOut(false);
  }

  /** The session ended underneath us (a 401 or a refused socket). */
  expire() {
    if (this.session !== 'signed-in') return;
    this.#signedOut(true);
  }

  #signedOut(expired) {
    const previous = this.store.me;
    this.generation = (this.generation || 0) + 1;
    this.socket.stop();
    this.store.reset();
    this.readSent.clear();
    this.historyLoads.clear();
    this.departed.clear();
    this.pendingFrames = null;
    this.session = 'signed-out';
    this.emit('signed-out', { expired, previous });
  }

  async #start(me) {
    this.generation = (this.generation || 0) + 1;
    const generation = this.generation;
    this.store.setMe(normalizeMe(me));
    setDraftOwner(me.organization.slug, me.extension.number);
    this.session = 'signed-in';
    this.pendingFrames = [];
    this.emit('signed-in');

    const directory = this.loadDirectory();
    this.loadNumbers();
    const ready = new Promise((resolve) => {
      const off = this.socket.on('ready', () => {
        off();
        resolve();
      });
      setTimeout(resolve, READY_WAIT_MS);
    });
    this.socket.start();
    // Load after the stream is ready so that nothing falls between the two;
    // frames arriving meanwhile are applied once the list is in.
    await ready;
    await Promise.all([directory, this.loadConversations()]);
    // Signed out (or in again) while loading: this start is stale.
    if (generation !== this.generation || this.session !== 'signed-in') return;
    const held = this.pendingFrames || [];
    this.pendingFrames = null;
    for (const frame of held) this.#onFrame(frame);
    this.#resendOutbox();
  }

  /** Sends again what was still unconfirmed when the page was last closed. */
  #resendOutbox() {
    if (!this.store.conversationsLoaded) return;
    for (const item of outbox.all()) {
      if (!this.store.conversations.has(item.conversation_id)) {
        outbox.remove(item.idempotency_key);
        continue;
      }
      this.retry(item);
    }
  }

  async #checkSession() {
    if (this.session !== 'signed-in') return;
    try {
      await api.get('/me');
    } catch {
      // A 401 already signed us out; anything else is a network problem
      // and the socket keeps retrying.
    }
  }

  // ---- loading ----

  async loadDirectory() {
    try {
      const data = await api.get('/extensions');
      this.store.setDirectory(data.extensions || []);
    } catch (error) {
      this.toast(`Could not load the directory: ${error.message}`, 'error');
    }
  }

  /** The business numbers I may text from; none when the server has none for me. */
  async loadNumbers() {
    try {
      const data = await api.get('/me/numbers', { quiet401: true });
      this.store.setNumbers(data?.numbers || []);
    } catch {
      // Unknown rather than none: + New → SMS stays open and the server
      // says why when it cannot text (409 no_sms_number).
    }
    return this.store.numbers;
  }

  async loadConversations() {
    try {
      const data = await api.get('/conversations');
      this.store.setConversations(data.conversations || []);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      this.toast(`Could not load conversations: ${error.message}`, 'error');
    }
  }

  async refreshConversation(id) {
    try {
      const data = await api.get(`/conversations/${id}`);
      const conversation = data.conversation || data;
      if (this.#isParticipant(conversation)) this.store.upsertConversation(conversation);
      return conversation;
    } catch {
      return null;
    }
  }

  /** Loads the newest page of history and the read positions, once. */
  openConversation(id) {
    const thread = this.store.thread(id);
    if (thread.loaded) {
      this.markRead(id);
      return Promise.resolve();
    }
    if (this.historyLoads.has(id)) return this.historyLoads.get(id);
    const load = (async () => {
      // Live messages arriving meanwhile are kept, not left to the answer.
      thread.loading = true;
      try {
        const [history, receipts] = await Promise.all([
          api.get(`/conversations/${id}/messages?limit=${HISTORY_PAGE}`),
          api.get(`/conversations/${id}/receipts`).catch(() => null),
        ]);
        this.store.addHistory(id, history.messages || [], { hasMore: history.has_more });
        if (receipts) this.store.setReceipts(id, receipts.receipts || []);
        this.markRead(id);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          this.store.removeConversation(id);
          this.toast('That conversation does not exist or you are no longer in it.', 'error');
          go('messages');
        } else if (!(error instanceof ApiError && error.status === 401)) {
          this.toast(`Could not load messages: ${error.message}`, 'error');
        }
        throw error;
      } finally {
        thread.loading = false;
        this.historyLoads.delete(id);
      }
    })();
    this.historyLoads.set(id, load);
    return load;
  }

  async loadOlder(id) {
    const thread = this.store.thread(id);
    const oldest = thread.oldestId;
    if (!thread.hasMoreBefore || thread.loadingOlder || oldest == null) return;
    thread.loadingOlder = true;
    this.store.emit('messages', id);
    try {
      const data = await api.get(`/conversations/${id}/messages?before=${oldest}&limit=${HISTORY_PAGE}`);
      thread.loadingOlder = false;
      this.store.addHistory(id, data.messages || [], { hasMore: data.has_more, older: true });
    } catch (error) {
      thread.loadingOlder = false;
      this.store.emit('messages', id);
      this.toast(`Could not load older messages: ${error.message}`, 'error');
    }
  }

  // ---- live frames ----

  #onReady(resumed) {
    if (!resumed) return;
    // Anything that failed for want of a connection goes out again.
    for (const entry of this.store.pendingMessages()) {
      if (entry.status === 'failed' && entry.error?.isNetwork) this.retry(entry);
    }
    if (this.store.activeConversationId) this.markRead(this.store.activeConversationId);
  }

  #onFrame(frame) {
    if (this.pendingFrames && frame.type !== 'typing') {
      this.pendingFrames.push(frame);
      return;
    }
    const data = frame.data || {};
    switch (frame.type) {
      case 'message.created':
        if (data.message) this.#onMessage(data.message);
        break;
      case 'message.updated':
        // An inbound image fetched (or not), a delivery's final word.
        if (data.message) this.store.replaceMessage(data.message);
        break;
      case 'delivery.updated':
        this.store.updateDelivery(data);
        break;
      case 'conversation.created':
      case 'conversation.updated':
        if (data.conversation) this.#onConversation(data.conversation);
        break;
      case 'receipt.updated':
        this.store.updateReceipt(data.conversation_id, data.extension_id, data.last_read_message_id);
        break;
      case 'unread.updated':
        this.store.setUnread(data.conversation_id, data.unread_count);
        break;
      case 'typing':
        this.store.setTyping(data.conversation_id, data.extension_id, Boolean(data.active));
        break;
      case 'resync':
        this.#resync();
        break;
      case 'error':
        // A frame of ours was not understood; nothing the user can act on.
        break;
      default:
        break;
    }
  }

  #onMessage(message) {
    const store = this.store;
    const id = message.conversation_id;
    const known = store.conversations.has(id);
    // The last words of a group I just left (e.g. "Dan left") are not news.
    if (!known && this.departed.has(id)) return;
    const { isNew } = store.applyMessage(message);
    if (!known) this.refreshConversation(id);
    // A colleague or a customer wrote it; system messages are never news.
    const fromOther = message.sender ? message.sender.id !== store.myId : Boolean(message.external_sender);
    if (!isNew || !fromOther) return;
    if (this.isLookingAt(id)) {
      this.markRead(id);
    } else {
      const conversation = store.conversations.get(id);
      if (conversation) store.setUnread(id, (conversation.unread_count || 0) + 1);
    }
    if (!store.me.settings.alert_muted) playTone(store.me.organization.alert_tone);
    const conversation = store.conversations.get(id);
    const author = store.authorOf(message);
    notify(conversation ? store.titleOf(conversation) : author, `${author}: ${messageSummary(message)}`, {
      tag: `conversation-${id}`,
      onClick: () => go('messages', id),
    });
  }

  #onConversation(conversation) {
    if (!this.#isParticipant(conversation)) {
      this.departed.add(conversation.id);
      const wasOpen = this.store.activeConversationId === conversation.id;
      const title = this.store.titleOf(this.store.conversations.get(conversation.id) || conversation);
      this.store.removeConversation(conversation.id);
      if (wasOpen) {
        go('messages');
        this.toast(`You are no longer in “${title}”.`, 'info');
      }
      return;
    }
    this.departed.delete(conversation.id);
    this.store.upsertConversation(conversation);
  }

  #isParticipant(conversation) {
    return (conversation.participants || []).some((p) => p.id === this.store.myId);
  }

  async #resync() {
    const active = this.store.activeConversationId;
    this.store.dropHistory();
    this.readSent.clear();
    await this.loadConversations();
    if (active && this.store.conversations.has(active)) await this.openConversation(active).catch(() => {});
    for (const id of this.store.threads.keys()) this.store.emit('messages', id);
  }

  /** Whether the user is reading conversation `id` right now. */
  isLookingAt(id) {
    return this.store.activeConversationId === id && document.visibilityState === 'visible';
  }

  // ---- actions ----

  markRead(id) {
    if (!this.isLookingAt(id)) return;
    const thread = this.store.thread(id);
    const newest = thread.newestId;
    if (newest == null) return;
    const conversation = this.store.conversations.get(id);
    if (conversation && conversation.unread_count) this.store.setUnread(id, 0);
    if ((this.readSent.get(id) ?? 0) >= newest) return;
    this.readSent.set(id, newest);
    if (!this.socket.send({ type: 'read', conversation_id: id, message_id: newest })) {
      api.post(`/conversations/${id}/read`, { message_id: newest }).catch(() => this.readSent.delete(id));
    }
  }

  sendTyping(id) {
    this.socket.send({ type: 'typing', conversation_id: id });
  }

  /**
   * Sends a message: shown at once, confirmed by the server's answer.
   * `attachments` are uploaded media ({id, content_type, width, height}).
   */
  send(id, text, attachments = []) {
    const key = newIdempotencyKey();
    const ids = attachments.map((a) => a.id);
    this.store.addPending(id, text, key, pendingAttachments(ids, attachments));
    return this.#post(id, text, key, ids);
  }

  /** Sends a failed message again with the same idempotency key. */
  retry(entry) {
    const ids = (entry.attachments || []).map((a) => a.id);
    this.store.addPending(entry.conversation_id, entry.text, entry.idempotency_key, pendingAttachments(ids, entry.attachments || []));
    return this.#post(entry.conversation_id, entry.text, entry.idempotency_key, ids);
  }

  async #post(id, text, key, attachmentIds = []) {
    const stored = { conversation_id: id, text, idempotency_key: key };
    if (attachmentIds.length) stored.attachments = attachmentIds.map((a) => ({ id: a }));
    outbox.put(stored);
    const body = { text, idempotency_key: key };
    if (attachmentIds.length) body.attachments = attachmentIds;
    try {
      const data = await api.post(`/conversations/${id}/messages`, body);
      outbox.remove(key);
      const message = data?.message || data;
      if (message?.id != null) this.store.applyMessage(message);
      this.markRead(id);
    } catch (error) {
      // A refusal (not a lost connection or a lost session) will not get
      // better by itself: keep it on screen with Retry, but not for later.
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 401 && error.status !== 429) outbox.remove(key);
      this.store.failPending(id, key, error);
    }
  }

  async createDirect(extensionId) {
    const data = await api.post('/conversations/direct', { extension_id: extensionId });
    const conversation = data.conversation || data;
    this.store.upsertConversation(conversation);
    return conversation;
  }

  /** The SMS conversation with `to` (typed as people type it) from one of my numbers. */
  async createSms(to, fromNumberId = null) {
    const body = { to };
    if (fromNumberId != null) body.from_number_id = fromNumberId;
    const data = await api.post('/conversations/sms', body);
    const conversation = data.conversation || data;
    this.store.upsertConversation(conversation);
    return conversation;
  }

  /** Uploads an image; resolves with the server's media ({id, content_type, width, height, size}). */
  async uploadMedia(file, options) {
    const data = await upload('/media', file, options);
    return data?.media || data;
  }

  /** How the server splits `text` into SMS segments. */
  async segments(text) {
    const data = await api.post('/sms/segments', { text });
    return data?.segments || data;
  }

  async createGroup(name, memberIds) {
    const data = await api.post('/conversations/group', { name, member_ids: memberIds });
    const conversation = data.conversation || data;
    this.store.upsertConversation(conversation);
    return conversation;
  }

  async rename(id, name) {
    const data = await api.patch(`/conversations/${id}`, { name });
    if (data) this.store.upsertConversation(data.conversation || data);
  }

  async addParticipants(id, extensionIds) {
    const data = await api.post(`/conversations/${id}/participants`, { extension_ids: extensionIds });
    if (data && (data.conversation || data.participants)) this.store.upsertConversation(data.conversation || data);
  }

  async removeParticipant(id, extensionId) {
    const data = await api.delete(`/conversations/${id}/participants/${extensionId}`);
    if (data && (data.conversation || data.participants)) this.store.upsertConversation(data.conversation || data);
  }

  async leave(id) {
    await api.post(`/conversations/${id}/leave`, {});
    this.departed.add(id);
    this.store.removeConversation(id);
  }

  async setMuted(muted) {
    const data = await api.patch('/me/settings', { alert_muted: muted });
    const settings = data?.settings || data || { alert_muted: muted };
    this.store.me.settings = { ...this.store.me.settings, alert_muted: Boolean(settings.alert_muted ?? muted) };
    this.store.emit('me', this.store.me);
  }

  toast(text, kind = 'info') {
    this.emit('toast', { text, kind });
  }
}

function normalizeMe(me) {
  return {
    extension: me.extension,
    organization: { alert_tone: 'chime', ...me.organization },
    settings: { alert_muted: false, ...me.settings },
    // Set only when the server runs the phone simulator (demo mode).
    simulator_url: typeof me.simulator_url === 'string' && me.simulator_url.startsWith('/') ? me.simulator_url : null,
  };
}

/** How an optimistic copy shows attachments: the uploader may read its own media. */
function pendingAttachments(ids, attachments) {
  return ids.map((id, index) => {
    const known = attachments[index] || {};
    return {
      id,
      content_type: known.content_type || 'image/jpeg',
      width: known.width ?? null,
      height: known.height ?? null,
      state: 'ready',
      url: known.url || `/api/v1/media/${encodeURIComponent(id)}`,
    };
  });
}
