// Small DOM helpers. User data always goes in as text nodes (never innerHTML).

const PROPERTIES = new Set([
  'value', 'checked', 'disabled', 'hidden', 'selected', 'multiple',
  'required', 'autofocus', 'readOnly', 'indeterminate',
]);

/**
 * Creates an element. `props` keys: `class`, `text`, `dataset`, `on<Event>`
 * handlers, form properties (value, checked, disabled…) and plain attributes.
 * Children may be nodes, strings (inserted as text), arrays, null or false.
 */
export function h(tag, props = null, ...children) {
  const el = document.createElement(tag);
  if (props) setProps(el, props);
  append(el, children);
  return el;
}

export function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) {
      if (PROPERTIES.has(key)) el[key] = false;
      continue;
    }
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Makes http(s) links in `text` clickable; everything else stays text. */
export function linkify(text) {
  const out = document.createDocumentFragment();
  const pattern = /\bhttps?:\/\/[^\s<>"']+/gi;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    let url = match[0];
    // Punctuation that ends a sentence is not part of the link.
    const trailing = url.match(/[.,;:!?)\]}]+$/);
    if (trailing) url = url.slice(0, -trailing[0].length);
    const start = match.index;
    if (start > last) out.append(document.createTextNode(text.slice(last, start)));
    out.append(safeLink(url));
    last = start + url.length;
  }
  if (last < text.length) out.append(document.createTextNode(text.slice(last)));
  return out;
}

function safeLink(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return document.createTextNode(url);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return document.createTextNode(url);
  }
  const a = document.createElement('a');
  a.href = parsed.href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.textContent = url;
  return a;
}

let idCounter = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix = 'sb') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** Two-letter initials of a display name. */
export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  const first = parts[0][0] || '';
  const second = parts.length > 1 ? parts[parts.length - 1][0] : parts[0][1] || '';
  return (first + second).toUpperCase();
}

const AVATAR_HUES = [210, 160, 265, 25, 335, 190, 45, 290, 120, 0];
/** An avatar circle with initials and a stable colour for `seed`. */
export function avatar(name, seed, extraClass = '') {
  const el = h('span', { class: `avatar ${extraClass}`.trim(), 'aria-hidden': 'true' }, initials(name));
  const hue = AVATAR_HUES[Math.abs(Number(seed) || hash(String(name))) % AVATAR_HUES.length];
  el.style.setProperty('--avatar-hue', String(hue));
  return el;
}

function hash(text) {
  let value = 0;
  for (const ch of text) value = (value * 31 + ch.charCodeAt(0)) | 0;
  return value;
}
