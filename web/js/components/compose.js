// The message box: Enter sends, Shift+Enter adds a line; drafts are kept per
// conversation; typing frames go out at most every 2 seconds. Images are
// attached with the paperclip, by drag and drop or by pasting, and uploaded
// at once. In text (SMS) conversations the server counts the segments as
// you type, and a customer who texted STOP cannot be written to.

import { h, replace } from '../dom.js';
import { icon } from '../icons.js';
import { loadDraft, saveDraft } from '../drafts.js';
import { describeError } from '../api.js';
import { plural } from '../format.js';

const TYPING_EVERY_MS = 2000;
const MAX_HEIGHT_PX = 180;
const SEGMENTS_DEBOUNCE_MS = 250;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const MAX_IMAGES = 10;
const ACCEPT = 'image/jpeg,image/png,image/gif';
const OPTED_OUT_TEXT = 'This customer opted out of texts (STOP). They must text START before you can text them again.';

export function createCompose(app, conversationId, { label, dropZone = null }) {
  const { store } = app;
  const conversation = () => store.conversations.get(conversationId);
  const isSms = () => store.isSms(conversation());
  const optedOut = () => isSms() && (conversation()?.externals || []).some((x) => x.opted_out);

  const input = h('textarea', {
    class: 'compose-input',
    rows: '1',
    placeholder: 'Write a message…',
    'aria-label': label,
    maxlength: '10000',
    'data-testid': 'compose',
  });
  const send = h('button', { class: 'button primary send-button', type: 'submit', 'aria-label': 'Send message', title: 'Send (Enter)' }, icon('send', { size: 18 }));
  const picker = h('input', { type: 'file', accept: ACCEPT, multiple: true, hidden: true, tabindex: '-1', 'aria-hidden': 'true' });
  const attach = h('button', { class: 'icon-button attach-button', type: 'button', 'aria-label': 'Attach images', title: 'Attach images (or drop or paste them here)' }, icon('paperclip', { size: 20 }));
  const tray = h('ul', { class: 'attach-tray', 'aria-label': 'Images to send', hidden: true });
  const problem = h('p', { class: 'compose-error', role: 'alert', hidden: true });
  const notice = h('p', { class: 'compose-notice', role: 'status', hidden: true, 'data-testid': 'opted-out' }, icon('ban', { size: 16 }), h('span', null, OPTED_OUT_TEXT));
  const hint = h('p', { class: 'compose-hint', id: `compose-hint-${conversationId}` }, 'Enter to send · Shift+Enter for a new line');
  const counter = h('p', { class: 'segment-counter', id: `compose-segments-${conversationId}`, 'data-testid': 'segments', hidden: true });
  input.setAttribute('aria-describedby', `${hint.id} ${counter.id}`);
  const form = h(
    'form',
    { class: 'compose', 'aria-label': 'Send a message' },
    notice,
    tray,
    problem,
    h('div', { class: 'compose-row' }, attach, input, send),
    h('div', { class: 'compose-foot' }, hint, counter),
    picker,
  );

  let lastTypingSent = 0;
  input.value = loadDraft(conversationId);

  // ---- attachments ----

  /** Each image being uploaded or ready to go: {file, url, state, progress, media, controller, el}. */
  let tiles = [];

  function uploading() {
    return tiles.some((t) => t.state === 'uploading');
  }

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  function addFiles(files) {
    if (optedOut()) return;
    const list = [...files];
    if (list.length === 0) return;
    const problems = [];
    for (const file of list) {
      if (tiles.length >= MAX_IMAGES) {
        problems.push(`At most ${MAX_IMAGES} images go in one message.`);
        break;
      }
      if (file.size > MAX_IMAGE_BYTES) {
        problems.push(`“${file.name || 'The image'}” is ${(file.size / 1024 / 1024).toFixed(1)} MB; images up to 10 MB can be sent.`);
        continue;
      }
      startUpload(file);
    }
    showProblem(problems.join(' '));
    renderTray();
    update();
  }

  function startUpload(file) {
    const tile = { file, url: URL.createObjectURL(file), state: 'uploading', progress: 0, media: null, controller: new AbortController(), el: null };
    tiles.push(tile);
    app.uploadMedia(file, {
      signal: tile.controller.signal,
      onProgress: (fraction) => {
        tile.progress = fraction;
        paintProgress(tile);
      },
    }).then((media) => {
      if (!tiles.includes(tile)) return;
      tile.state = 'done';
      tile.media = media;
      renderTray();
      update();
    }).catch((error) => {
      if (!tiles.includes(tile)) return;
      removeTile(tile);
      if (error?.name === 'AbortError') return;
      const name = file.name ? `“${file.name}”` : 'The image';
      showProblem(`${name} could not be attached: ${describeError(error, 'the upload failed.')}`);
    });
  }

  function removeTile(tile) {
    tile.controller.abort();
    URL.revokeObjectURL(tile.url);
    tiles = tiles.filter((t) => t !== tile);
    renderTray();
    update();
  }

  function paintProgress(tile) {
    const bar = tile.el?.querySelector('.tile-progress');
    if (!bar) return;
    const percent = Math.round(tile.progress * 100);
    bar.setAttribute('aria-valuenow', String(percent));
    bar.firstElementChild.style.width = `${percent}%`;
  }

  function renderTray() {
    tray.hidden = tiles.length === 0;
    replace(tray, tiles.map((tile, index) => {
      const name = tile.file.name || `Image ${index + 1}`;
      const remove = h('button', { class: 'tile-remove', type: 'button', 'aria-label': `Remove ${name}`, title: 'Remove' }, icon('close', { size: 14 }));
      remove.addEventListener('click', () => {
        removeTile(tile);
        input.focus();
      });
      const progress = tile.state === 'uploading'
        ? h('div', { class: 'tile-progress', role: 'progressbar', 'aria-label': `Uploading ${name}`, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, h('span', { class: 'tile-progress-fill' }))
        : null;
      tile.el = h('li', { class: `attach-tile ${tile.state}`, 'data-testid': 'attachment-tile', dataset: { state: tile.state } }, h('img', { src: tile.url, alt: name }), progress, remove);
      paintProgress(tile);
      return tile.el;
    }));
  }

  function clearTiles() {
    for (const tile of tiles) URL.revokeObjectURL(tile.url);
    tiles = [];
    renderTray();
  }

  attach.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    addFiles(picker.files || []);
    picker.value = '';
    input.focus();
  });
  input.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length === 0) return;
    event.preventDefault();
    addFiles(files);
  });

  // Dropping images anywhere on the conversation attaches them.
  const zone = dropZone || form;
  let dragDepth = 0;
  const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes('Files');
  const onDragEnter = (event) => {
    if (!carriesFiles(event) || optedOut()) return;
    event.preventDefault();
    dragDepth += 1;
    zone.classList.add('dragging');
  };
  const onDragOver = (event) => {
    if (!carriesFiles(event) || optedOut()) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  };
  const onDragLeave = () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) zone.classList.remove('dragging');
  };
  const onDrop = (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    zone.classList.remove('dragging');
    addFiles(event.dataTransfer.files || []);
    input.focus();
  };
  zone.addEventListener('dragenter', onDragEnter);
  zone.addEventListener('dragover', onDragOver);
  zone.addEventListener('dragleave', onDragLeave);
  zone.addEventListener('drop', onDrop);

  // ---- segments (text conversations) ----

  let segmentsTimer = null;
  let segmentsAsked = 0; // the number of the newest question; older answers are dropped

  function scheduleSegments() {
    clearTimeout(segmentsTimer);
    segmentsAsked += 1;
    const text = input.value;
    if (!isSms() || text === '') {
      counter.hidden = true;
      counter.textContent = '';
      return;
    }
    const asked = segmentsAsked;
    segmentsTimer = setTimeout(async () => {
      try {
        const answer = await app.segments(text);
        if (asked !== segmentsAsked || !answer) return;
        counter.textContent = describeSegments(text, answer);
        counter.dataset.encoding = answer.encoding;
        counter.hidden = false;
      } catch {
        // The count is a help, not a gate: without it typing goes on.
      }
    }, SEGMENTS_DEBOUNCE_MS);
  }

  // ---- sending ----

  function canSend() {
    if (optedOut() || uploading()) return false;
    return input.value.trim() !== '' || tiles.some((t) => t.state === 'done');
  }

  function update() {
    const blocked = optedOut();
    notice.hidden = !blocked;
    input.disabled = blocked;
    input.placeholder = blocked ? 'Texting this customer is paused' : 'Write a message…';
    attach.disabled = blocked;
    form.classList.toggle('opted-out', blocked);
    send.disabled = !canSend();
    send.title = uploading() ? 'Waiting for the images to upload' : 'Send (Enter)';
  }

  function autosize() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, MAX_HEIGHT_PX)}px`;
    update();
  }

  function submit() {
    if (uploading()) {
      showProblem('Wait a moment: the images are still uploading.');
      return;
    }
    if (!canSend()) return;
    // Leading spaces can matter (indented text); blank lines around do not.
    const raw = input.value.replace(/^(\s*\n)+/, '').trimEnd();
    const text = raw.trim() ? raw : '';
    const attachments = tiles.filter((t) => t.state === 'done').map((t) => t.media);
    input.value = '';
    saveDraft(conversationId, '');
    lastTypingSent = 0;
    clearTiles();
    showProblem('');
    scheduleSegments();
    autosize();
    app.send(conversationId, text, attachments);
  }

  input.addEventListener('input', () => {
    saveDraft(conversationId, input.value);
    autosize();
    scheduleSegments();
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

  const off = store.on('conversations', update);
  queueMicrotask(() => {
    autosize();
    scheduleSegments();
  });
  return {
    el: form,
    focus: () => input.focus({ preventScroll: true }),
    input,
    destroy() {
      off();
      clearTimeout(segmentsTimer);
      for (const tile of tiles) tile.controller.abort();
      clearTiles();
      zone.removeEventListener('dragenter', onDragEnter);
      zone.removeEventListener('dragover', onDragOver);
      zone.removeEventListener('dragleave', onDragLeave);
      zone.removeEventListener('drop', onDrop);
      zone.classList.remove('dragging');
    },
  };
}

/** "42 characters · 1 segment · GSM-7", or "… · UCS-2 because of “😀”". */
export function describeSegments(text, answer) {
  const characters = [...text].length;
  const parts = [plural(characters, 'character'), plural(answer.segments ?? 0, 'segment')];
  if (answer.encoding === 'ucs2') {
    const offender = answer.offender?.character;
    parts.push(offender ? `UCS-2 because of “${offender}”` : 'UCS-2');
  } else {
    parts.push('GSM-7');
  }
  return parts.join(' · ');
}
