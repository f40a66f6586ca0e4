// The live event stream: one WebSocket, resumed from the last cursor after
// any disconnection, with exponential backoff between attempts.

import { Emitter } from './events.js';

const PING_EVERY_MS = 25_000;
const PONG_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
/** Close code of a connection whose session ended: do not reconnect. */
const SESSION_ENDED = 4401;

/**
 * Events: `frame` (a parsed server frame), `ready` ({resumed}), `status`
 * ('connecting' | 'open' | 'down' | 'offline'), `refused` (the socket closed
 * before it ever opened — the caller checks whether the session ended),
 * `ended` (the server closed it because the session ended).
 */
export class LiveSocket extends Emitter {
  #ws = null;
  #cursor = null;
  #attempt = 0;
  #retryTimer = null;
  #pingTimer = null;
  #pongTimer = null;
  #stopped = true;
  #everReady = false;
  #status = 'down';

  constructor() {
    super();
    this.onOnline = () => {
      if (!this.#stopped && !this.#ws) this.#connectSoon(0);
    };
    this.onOffline = () => {
      if (!this.#stopped && !this.#ws) this.#setStatus('offline');
    };
  }

  get cursor() {
    return this.#cursor;
  }

  get status() {
    return this.#status;
  }

  get isOpen() {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  start() {
    if (!this.#stopped) return;
    this.#stopped = false;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    clearTimeout(this.#retryTimer);
    this.#clearHeartbeat();
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onerror = null;
      ws.onmessage = null;
      ws.close(1000, 'signed out');
    }
    this.#cursor = null;
    this.#everReady = false;
    this.#attempt = 0;
    this.#setStatus('down');
  }

  /** Sends a client frame when connected; returns whether it was sent. */
  send(frame) {
    if (!this.isOpen) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** Drops the connection and reconnects at once (used after a long sleep). */
  reconnectNow() {
    if (this.#stopped) return;
    if (this.#ws) this.#ws.close(4000, 'reconnect');
    else this.#connectSoon(0);
  }

  #url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = this.#cursor ? `?cursor=${encodeURIComponent(this.#cursor)}` : '';
    return `${scheme}//${location.host}/api/v1/ws${query}`;
  }

  #connect() {
    if (this.#stopped) return;
    if (navigator.onLine === false) {
      // No point knocking while the device is offline; `online` wakes us.
      this.#setStatus('offline');
      return;
    }
    this.#setStatus('connecting');
    let opened = false;
    const ws = new WebSocket(this.#url());
    this.#ws = ws;
    ws.onopen = () => {
      opened = true;
      this.#startHeartbeat();
    };
    ws.onmessage = (event) => this.#onMessage(event);
    ws.onerror = () => {};
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#clearHeartbeat();
      if (this.#stopped) return;
      if (event.code === SESSION_ENDED) {
        // Signed out elsewhere, password changed, or extension disabled.
        this.emit('ended');
        return;
      }
      this.#setStatus(navigator.onLine === false ? 'offline' : 'down');
      if (!opened) this.emit('refused');
      this.#attempt += 1;
      this.#connectSoon(this.#backoff());
    };
  }

  #backoff() {
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, this.#attempt - 1));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  #connectSoon(delay) {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (!this.#ws) this.#connect();
    }, delay);
  }

  #onMessage(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    if (frame.type === 'pong') {
      clearTimeout(this.#pongTimer);
      return;
    }
    if (frame.cursor) this.#cursor = frame.cursor;
    if (frame.type === 'ready') {
      const resumed = this.#everReady;
      this.#everReady = true;
      this.#attempt = 0;
      this.#setStatus('open');
      this.emit('ready', { resumed });
      return;
    }
    this.emit('frame', frame);
  }

  #startHeartbeat() {
    this.#clearHeartbeat();
    this.#pingTimer = setInterval(() => {
      if (!this.send({ type: 'ping' })) return;
      clearTimeout(this.#pongTimer);
      this.#pongTimer = setTimeout(() => this.#ws?.close(4001, 'no pong'), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  #clearHeartbeat() {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
  }

  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.emit('status', status);
  }
}
