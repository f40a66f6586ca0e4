// The phone simulator: this page acts as a customer's mobile phone. It texts
// the organization's business numbers through the server's built-in
// simulator carrier and shows, live, what the business texts back, with the
// delivery receipts the simulator returns. No session: the simulator exists
// only when the server runs it (demo mode).

import { h, replace, linkify } from '/js/dom.js';
import { icon } from '/js/icons.js';
import { clockTime, dayKey, dayLabel, fullTime, listTime, phoneDisplay } from '/js/format.js';

const API = '/simulator/api';
const PHONE_KEY = 'switchboard.simulator.phone';
const RECENT_KEY = 'switchboard.simulator.recent';
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const MAX_IMAGES = 10;
const EMPTY_TEXT = 'No texts yet. Pick a business number and say hello.';
const FROM_PHONE_STATUS = { queued: 'Sending…', sent: 'Sent', delivered: 'Delivered', failed: 'Not delivered' };

// ---- small helpers ----

class SimError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body = undefined, contentType = 'application/json') {
  const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = contentType;
    init.body = contentType === 'application/json' ? JSON.stringify(body) : body;
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch {
    throw new SimError(0, 'Cannot reach the server. Check that it is running and try again.');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const fallback = response.status === 404 ? 'The phone simulator is not running on this server (start it with --demo).' : `The server answered ${response.status}.`;
    throw new SimError(response.status, data?.error?.message || fallback);
  }
  return data;
}

const phonePath = (phone) => `/phones/${encodeURIComponent(phone)}`;

/**
 * A typed phone number in E.164: "+…" as typed (digits only), or a North
 * American number of 10 digits (11 with the leading 1). Null otherwise.
 */
export function toE164(typed) {
  const text = String(typed || '').trim();
  const digits = text.replace(/\D/g, '');
  if (text.startsWith('+') || text.startsWith('00')) {
    const international = text.startsWith('00') ? digits.slice(2) : digits;
    return international.length >= 8 && international.length <= 15 && international[0] !== '0' ? `+${international}` : null;
  }
  if (digits.length === 10 && /^[2-9]/.test(digits)) return `+1${digits}`;
  if (digits.length === 11 && digits.startsWith('1')) return `+${digits}`;
  return null;
}

const storage = {
  get(key, fallback) {
    try {
      const value = localStorage.getItem(key);
      return value === null ? fallback : JSON.parse(value);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch {
      // Private mode or full storage: the number lasts for this visit.
    }
  },
};

// ---- state ----

const state = {
  phone: null, // E.164
  numbers: [], // business numbers: {number, display, organization}
  numbersError: null,
  messages: new Map(), // id -> M
  pending: [], // optimistic sends: {key, business_number, text, media, status, error}
  thread: null, // the business number whose thread is open, or null for the list
  loaded: false,
  live: 'connecting', // 'connecting' | 'open' | 'down'
  source: null,
};

const root = document.getElementById('simulator');
let screenEl = null; // the phone's screen
let statusEl = null; // the phone's status bar (my number, live state)
let composer = null; // the thread's composer, kept across renders

function businessOf(number) {
  return state.numbers.find((n) => n.number === number) || null;
}

function businessLabel(number) {
  return businessOf(number)?.display || phoneDisplay(number);
}

function threadsByNumber() {
  const threads = new Map();
  for (const m of [...state.messages.values()].sort(byTime)) {
    threads.set(m.business_number, m);
  }
  for (const p of state.pending) if (!threads.has(p.business_number)) threads.set(p.business_number, null);
  return [...threads.entries()].sort((a, b) => (b[1]?.at || '9') .localeCompare(a[1]?.at || '9'));
}

function byTime(a, b) {
  return (a.at || '').localeCompare(b.at || '') || String(a.id).localeCompare(String(b.id), undefined, { numeric: true });
}

// ---- the page ----

function start() {
  state.phone = storage.get(PHONE_KEY, null);
  const setup = createSetup();
  statusEl = h('div', { class: 'phone-status' });
  screenEl = h('div', { class: 'phone-screen' });
  const phone = h('section', { class: 'phone', 'aria-label': 'Simulated phone' }, h('div', { class: 'phone-notch', 'aria-hidden': 'true' }), statusEl, screenEl);
  root.replaceChildren(
    h('header', { class: 'sim-top' }, h('span', { class: 'sim-mark', 'aria-hidden': 'true' }, icon('mobile', { size: 18 })), h('h1', null, 'Phone simulator'), h('span', { class: 'sim-top-note' }, 'Switchboard demo')),
    h('main', { class: 'sim-main' }, setup.el, phone),
  );
  root.removeAttribute('aria-busy');
  document.addEventListener('keydown', (event) => {
    // Escape goes back to the list, unless it would throw away what is typed.
    const typing = (event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement) && event.target.value;
    if (event.key === 'Escape' && state.thread && !event.defaultPrevented && !typing) {
      openList();
    }
  });
  loadNumbers();
  if (state.phone) usePhone(state.phone);
  else render();
}

function createSetup() {
  const inputId = 'sim-phone';
  const input = h('input', { id: inputId, type: 'tel', inputmode: 'tel', autocomplete: 'tel', list: 'sim-phone-recent', placeholder: 'e.g. (415) 555-2671 or +44 7700 900123', value: state.phone || '', 'aria-describedby': 'sim-phone-hint' });
  const recent = h('datalist', { id: 'sim-phone-recent' });
  const error = h('p', { class: 'field-error', id: 'sim-phone-error', role: 'alert', hidden: true });
  const save = h('button', { class: 'button primary', type: 'submit' }, 'Use this number');
  const random = h('button', { class: 'button', type: 'button' }, 'Make one up');
  const current = h('p', { class: 'sim-current', role: 'status' });
  const form = h(
    'form',
    { class: 'stack', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: inputId }, 'My phone number'), input, recent, h('p', { class: 'field-hint', id: 'sim-phone-hint' }, 'With its country code (+44 …), or a 10-digit US number. Remembered on this browser.'), error),
    h('div', { class: 'form-actions' }, save, random),
    current,
  );

  function renderRecent() {
    replace(recent, storage.get(RECENT_KEY, []).map((n) => h('option', { value: n }, phoneDisplay(n))));
    current.textContent = state.phone ? `This phone is ${phoneDisplay(state.phone)}.` : 'Pick a number for this phone to start.';
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const phone = toE164(input.value);
    if (!phone) {
      error.textContent = 'That does not look like a phone number. Type it with its country code (+44 …) or as a 10-digit US number.';
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'sim-phone-hint sim-phone-error');
      input.focus();
      return;
    }
    error.hidden = true;
    input.removeAttribute('aria-invalid');
    input.setAttribute('aria-describedby', 'sim-phone-hint');
    input.value = phoneDisplay(phone);
    usePhone(phone);
    renderRecent();
  });
  random.addEventListener('click', () => {
    // 555-01XX numbers are reserved for fiction in North America.
    const line = String(100 + Math.floor(Math.random() * 100)).padStart(4, '0');
    input.value = `(415) 555-${line}`;
    input.focus();
  });
  input.addEventListener('input', () => {
    error.hidden = true;
    input.removeAttribute('aria-invalid');
  });
  renderRecent();

  const el = h(
    'section',
    { class: 'card sim-setup', 'aria-labelledby': 'sim-setup-title' },
    h('h2', { class: 'card-title', id: 'sim-setup-title' }, 'Be the customer'),
    h('p', { class: 'card-description' }, 'This page is a customer’s mobile phone. Text a business number of the organization and it arrives in the portal as a real text would; what the business texts back appears here at once, and the simulator sends the delivery receipts a carrier would.'),
    form,
  );
  return { el };
}

// ---- loading and live updates ----

async function loadNumbers() {
  try {
    const data = await call('GET', '/numbers');
    state.numbers = data?.numbers || [];
    state.numbersError = null;
  } catch (error) {
    state.numbersError = error.message;
  }
  render();
}

function usePhone(phone) {
  const changed = phone !== state.phone || !state.source;
  state.phone = phone;
  storage.set(PHONE_KEY, phone);
  storage.set(RECENT_KEY, [phone, ...storage.get(RECENT_KEY, []).filter((n) => n !== phone)].slice(0, 6));
  if (!changed) return;
  state.source?.close();
  state.messages.clear();
  state.pending = [];
  state.thread = null;
  state.loaded = false;
  composer = null;
  render();
  connect();
}

function connect() {
  const phone = state.phone;
  const source = new EventSource(`${API}${phonePath(phone)}/events`);
  state.source = source;
  state.live = 'connecting';
  source.addEventListener('open', () => {
    if (state.source !== source) return;
    state.live = 'open';
    // Whatever happened while the stream was down comes from the history.
    loadHistory(phone);
  });
  source.addEventListener('message', (event) => {
    if (state.source !== source) return;
    const message = parse(event.data);
    if (message?.id != null) upsert(message);
  });
  source.addEventListener('status', (event) => {
    if (state.source !== source) return;
    const update = parse(event.data);
    const message = update && state.messages.get(update.id);
    if (message && update.status) {
      message.status = update.status;
      render();
    }
  });
  source.addEventListener('error', () => {
    if (state.source !== source) return;
    // EventSource reconnects by itself unless the server refused the stream.
    state.live = source.readyState === EventSource.CLOSED ? 'closed' : 'down';
    renderStatus();
  });
  renderStatus();
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

async function loadHistory(phone) {
  try {
    const data = await call('GET', `${phonePath(phone)}/messages`);
    if (phone !== state.phone) return;
    for (const m of data?.messages || []) state.messages.set(m.id, m);
    state.loaded = true;
    state.historyError = null;
  } catch (error) {
    state.historyError = error.message;
  }
  render();
}

function upsert(message) {
  state.messages.set(message.id, { ...state.messages.get(message.id), ...message });
  render();
}

// ---- rendering ----

function render() {
  renderStatus();
  if (!screenEl) return;
  if (!state.phone) {
    replace(screenEl, h('div', { class: 'screen-empty' }, icon('mobile', { size: 36 }), h('p', { class: 'empty-title' }, 'Which phone is this?'), h('p', null, 'Type a phone number on the left to start texting.')));
    return;
  }
  if (state.thread) renderThread();
  else renderList();
}

function renderStatus() {
  if (!statusEl) return;
  const live = { open: 'Live', connecting: 'Connecting…', down: 'Reconnecting…', closed: 'Not connected' }[state.live] || '';
  replace(
    statusEl,
    h('span', { class: 'phone-me' }, state.phone ? phoneDisplay(state.phone) : 'No number'),
    state.phone ? h('span', { class: `phone-live phone-live-${state.live}`, role: 'status' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), live) : null,
  );
}

/** The "Text a business number" picker, kept across renders so a choice being made survives live updates. */
let picker = null;

function businessPicker() {
  const signature = JSON.stringify([state.numbers, state.numbersError]);
  if (picker && picker.signature === signature) return picker.el;
  const selectId = 'sim-business';
  const previous = picker?.select.value;
  // The organization is named in each option only when there are several.
  const organizations = new Set(state.numbers.map((n) => n.organization));
  const label = (n) => (organizations.size > 1 ? `${n.display || phoneDisplay(n.number)} · ${n.organization}` : n.display || phoneDisplay(n.number));
  const select = h(
    'select',
    { id: selectId, disabled: state.numbers.length === 0 },
    state.numbers.length
      ? state.numbers.map((n) => h('option', { value: n.number, selected: n.number === previous }, label(n)))
      : h('option', { value: '' }, state.numbersError ? 'Business numbers unavailable' : 'Loading business numbers…'),
  );
  const go = h('button', { class: 'button primary', type: 'submit', disabled: state.numbers.length === 0 }, 'Text');
  const el = h(
    'form',
    { class: 'new-text', 'aria-label': 'Text a business number' },
    h('label', { for: selectId }, organizations.size === 1 ? `Text a business number of ${[...organizations][0]}` : 'Text a business number'),
    h('div', { class: 'new-text-row' }, select, go),
    state.numbersError ? h('p', { class: 'field-error', role: 'alert' }, state.numbersError) : null,
  );
  el.addEventListener('submit', (event) => {
    event.preventDefault();
    if (select.value) openThread(select.value);
  });
  // A select does not submit its form on Enter; here it opens the thread.
  select.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && select.value) {
      event.preventDefault();
      openThread(select.value);
    }
  });
  picker = { el, select, signature };
  return el;
}

function renderList() {
  composer = null;

  const threads = threadsByNumber();
  let body;
  if (!state.loaded && !state.historyError) {
    body = h('div', { class: 'screen-empty', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading texts…');
  } else if (state.historyError) {
    body = h('div', { class: 'screen-empty' }, icon('alert', { size: 28 }), h('p', null, state.historyError));
  } else if (threads.length === 0) {
    body = h('div', { class: 'screen-empty', 'data-testid': 'sim-empty' }, icon('message', { size: 36 }), h('p', null, EMPTY_TEXT));
  } else {
    body = h(
      'ul',
      { class: 'thread-list', 'aria-label': 'Conversations' },
      threads.map(([number, last]) => {
        const business = businessOf(number);
        const preview = last ? `${last.direction === 'from_phone' ? 'You: ' : ''}${last.text || (last.media?.length ? 'Photo' : '')}` : 'Sending…';
        const row = h(
          'button',
          { class: 'thread-row', type: 'button', dataset: { number } },
          h('span', { class: 'thread-face', 'aria-hidden': 'true' }, icon('message', { size: 18 })),
          h(
            'span',
            { class: 'thread-main' },
            h('span', { class: 'thread-top' }, h('span', { class: 'thread-name' }, businessLabel(number)), last ? h('time', { class: 'thread-time', datetime: last.at }, listTime(last.at)) : null),
            business ? h('span', { class: 'thread-org' }, business.organization) : null,
            h('span', { class: 'thread-preview' }, preview),
          ),
        );
        row.addEventListener('click', () => openThread(number));
        return h('li', null, row);
      }),
    );
  }
  const focused = document.activeElement?.closest?.('.thread-row')?.dataset.number;
  const form = businessPicker();
  const pickerFocus = form.contains(document.activeElement) ? document.activeElement : null;
  replace(screenEl, h('div', { class: 'screen-head' }, h('h2', { class: 'screen-title' }, 'Messages')), form, body);
  if (focused) screenEl.querySelector(`.thread-row[data-number="${CSS.escape(focused)}"]`)?.focus();
  else pickerFocus?.focus();
}

function openThread(number) {
  state.thread = number;
  composer = null;
  render();
  composer?.focus();
}

function openList() {
  const from = state.thread;
  state.thread = null;
  render();
  screenEl.querySelector(`.thread-row[data-number="${CSS.escape(from || '')}"]`)?.focus();
}

function renderThread() {
  const number = state.thread;
  const business = businessOf(number);
  const back = h('button', { class: 'icon-button screen-back', type: 'button', 'aria-label': 'Back to all conversations' }, icon('back', { size: 20 }));
  back.addEventListener('click', openList);
  const head = h(
    'div',
    { class: 'screen-head thread-head' },
    back,
    h('div', { class: 'thread-heading' }, h('h2', { class: 'screen-title' }, businessLabel(number)), business ? h('p', { class: 'thread-sub' }, business.organization) : null),
  );

  const messages = [...state.messages.values()].filter((m) => m.business_number === number).sort(byTime);
  const log = h('div', { class: 'sim-log', role: 'log', 'aria-live': 'polite', 'aria-label': `Texts with ${businessLabel(number)}`, tabindex: '0', 'data-testid': 'sim-log' });
  let day = null;
  const lastFromPhone = [...messages].reverse().find((m) => m.direction === 'from_phone');
  for (const m of messages) {
    if (dayKey(m.at) !== day) {
      day = dayKey(m.at);
      log.append(h('div', { class: 'sim-day', role: 'separator' }, dayLabel(m.at)));
    }
    log.append(bubble(m, m === lastFromPhone));
  }
  for (const p of state.pending.filter((x) => x.business_number === number)) log.append(pendingBubble(p));
  if (messages.length === 0 && !state.pending.some((p) => p.business_number === number)) {
    log.append(h('div', { class: 'screen-empty' }, h('p', null, `Say hello to ${businessLabel(number)}.`)));
  }

  if (!composer || composer.number !== number) composer = createComposer(number);
  const hadFocus = composer.el.contains(document.activeElement);
  replace(screenEl, head, log, composer.el);
  log.scrollTop = log.scrollHeight;
  // Pictures have no known size until they load: keep the newest text in view.
  for (const img of log.querySelectorAll('img')) {
    if (!img.complete) img.addEventListener('load', () => { log.scrollTop = log.scrollHeight; }, { once: true });
  }
  if (hadFocus) composer.focus();
}

function mediaNodes(media) {
  if (!media?.length) return null;
  return h(
    'div',
    { class: 'sim-media' },
    media.map((item, index) => h('a', { href: item.url, target: '_blank', rel: 'noopener noreferrer', title: 'Open the picture in a new tab' }, h('img', { src: item.url, alt: `Picture ${index + 1}`, loading: 'lazy' }))),
  );
}

function bubble(m, showStatus) {
  const fromMe = m.direction === 'from_phone';
  const status = fromMe && (showStatus || m.status === 'failed')
    ? h('p', { class: `sim-status sim-status-${m.status}`, 'data-testid': 'sim-status' }, FROM_PHONE_STATUS[m.status] || m.status)
    : null;
  // What this phone told the business's carrier about a text it received.
  const receipt = !fromMe && m.status ? h('span', { class: 'sim-receipt', title: 'The delivery receipt this phone sent back' }, `receipt: ${m.status}`) : null;
  return h(
    'div',
    { class: `sim-msg ${fromMe ? 'from-me' : 'to-me'}`, dataset: { id: String(m.id) } },
    h('span', { class: 'visually-hidden' }, fromMe ? 'You: ' : `${businessLabel(m.business_number)}: `),
    h('div', { class: 'sim-bubble' }, mediaNodes(m.media), m.text ? h('p', { class: 'sim-text' }, linkify(m.text)) : null),
    h('p', { class: 'sim-meta' }, h('time', { datetime: m.at, title: fullTime(m.at) }, clockTime(m.at)), receipt),
    status,
  );
}

function pendingBubble(p) {
  const retry = p.error ? h('button', { class: 'link-button', type: 'button' }, 'Try again') : null;
  retry?.addEventListener('click', () => {
    p.error = null;
    render();
    deliver(p);
  });
  return h(
    'div',
    { class: `sim-msg from-me pending${p.error ? ' failed' : ''}` },
    h('div', { class: 'sim-bubble' }, mediaNodes(p.previews), p.text ? h('p', { class: 'sim-text' }, p.text) : null),
    p.error
      ? h('p', { class: 'sim-status sim-status-failed', role: 'alert' }, `Not sent: ${p.error} `, retry)
      : h('p', { class: 'sim-status' }, h('span', { class: 'spinner tiny', 'aria-hidden': 'true' }), ' Sending…'),
  );
}

// ---- composing ----

function createComposer(number) {
  const input = h('textarea', { class: 'sim-input', rows: '1', placeholder: 'Text message', 'aria-label': `Text ${businessLabel(number)}`, maxlength: '1600', 'data-testid': 'sim-compose' });
  const picker = h('input', { type: 'file', accept: 'image/jpeg,image/png,image/gif', multiple: true, hidden: true, tabindex: '-1', 'aria-hidden': 'true', 'data-testid': 'sim-file' });
  const attach = h('button', { class: 'icon-button sim-attach', type: 'button', 'aria-label': 'Add a picture', title: 'Add a picture' }, icon('image', { size: 20 }));
  const send = h('button', { class: 'sim-send', type: 'submit', 'aria-label': 'Send text', disabled: true }, icon('send', { size: 18 }));
  const tray = h('ul', { class: 'sim-tray', 'aria-label': 'Pictures to send', hidden: true });
  const problem = h('p', { class: 'field-error sim-problem', role: 'alert', hidden: true });
  const form = h('form', { class: 'sim-compose', 'aria-label': 'Write a text' }, tray, problem, h('div', { class: 'sim-compose-row' }, attach, input, send), picker);
  let pictures = []; // {file, url, media, state}

  const uploading = () => pictures.some((p) => p.state === 'uploading');
  function update() {
    send.disabled = uploading() || (!input.value.trim() && !pictures.some((p) => p.state === 'done'));
    tray.hidden = pictures.length === 0;
    replace(tray, pictures.map((p, index) => {
      const remove = h('button', { class: 'tile-remove', type: 'button', 'aria-label': `Remove picture ${index + 1}` }, icon('close', { size: 14 }));
      remove.addEventListener('click', () => {
        URL.revokeObjectURL(p.url);
        pictures = pictures.filter((x) => x !== p);
        update();
        input.focus();
      });
      return h('li', { class: `attach-tile ${p.state}`, dataset: { state: p.state } }, h('img', { src: p.url, alt: `Picture ${index + 1}` }), p.state === 'uploading' ? h('span', { class: 'tile-spinner spinner', role: 'status', 'aria-label': 'Uploading' }) : null, remove);
    }));
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
  }

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  async function addFiles(files) {
    showProblem('');
    for (const file of files) {
      if (pictures.length >= MAX_IMAGES) {
        showProblem(`At most ${MAX_IMAGES} pictures go in one text.`);
        break;
      }
      if (file.size > MAX_IMAGE_BYTES) {
        showProblem(`“${file.name}” is over 10 MB.`);
        continue;
      }
      const picture = { file, url: URL.createObjectURL(file), media: null, state: 'uploading' };
      pictures.push(picture);
      call('POST', '/media', file, file.type || 'application/octet-stream').then((data) => {
        picture.media = data?.media || data;
        picture.state = 'done';
        update();
      }).catch((error) => {
        URL.revokeObjectURL(picture.url);
        pictures = pictures.filter((x) => x !== picture);
        showProblem(`“${file.name}” could not be added: ${error.message}`);
        update();
      });
    }
    update();
  }

  function submit() {
    if (send.disabled) return;
    const text = input.value.trim();
    const ready = pictures.filter((p) => p.state === 'done');
    const item = {
      key: `${Date.now()}-${Math.random()}`,
      business_number: number,
      text,
      media: ready.map((p) => p.media.id),
      previews: ready.map((p) => ({ url: p.url, content_type: p.file.type })),
      error: null,
    };
    pictures = [];
    input.value = '';
    showProblem('');
    update();
    state.pending.push(item);
    render();
    deliver(item);
  }

  attach.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    addFiles([...(picker.files || [])]);
    picker.value = '';
  });
  input.addEventListener('input', update);
  input.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length === 0) return;
    event.preventDefault();
    addFiles(files);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
    input.focus();
  });
  update();
  return { el: form, number, focus: () => input.focus({ preventScroll: true }) };
}

async function deliver(item) {
  const phone = state.phone;
  try {
    const body = { to: item.business_number, text: item.text };
    if (item.media.length) body.media = item.media;
    const data = await call('POST', `${phonePath(phone)}/messages`, body);
    if (phone !== state.phone) return;
    state.pending = state.pending.filter((p) => p !== item);
    const message = data?.message;
    if (message?.id != null) state.messages.set(message.id, { ...message, ...state.messages.get(message.id) });
    for (const preview of item.previews) setTimeout(() => URL.revokeObjectURL(preview.url), 60_000);
  } catch (error) {
    item.error = error.message;
  }
  render();
}

start();
