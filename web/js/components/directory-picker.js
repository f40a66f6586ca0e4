// A searchable list of colleagues from the extension directory, either to
// pick one (buttons) or several (checkboxes).

import { h, replace, avatar, uid } from '../dom.js';
import { icon } from '../icons.js';

/**
 * Options: `multiple`, `exclude` (extension ids), `onPick(ext)` for single
 * choice. Returns {el, selected(), focus()}.
 */
export function createDirectoryPicker(app, { multiple = false, exclude = [], onPick = null, label = 'Search colleagues' } = {}) {
  const { store } = app;
  const excluded = new Set([store.myId, ...exclude]);
  const chosen = new Set();
  const search = h('input', { class: 'picker-search', type: 'search', placeholder: 'Search by name or extension', 'aria-label': label, autocomplete: 'off' });
  const list = h('ul', { class: 'picker-list', 'aria-label': 'Colleagues' });
  const status = h('p', { class: 'picker-status', role: 'status' });
  const count = h('p', { class: 'picker-count', 'aria-live': 'polite' });

  function people() {
    return [...store.directory.values()]
      .filter((ext) => !excluded.has(ext.id) && !ext.disabled)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  function render() {
    const query = search.value.trim().toLowerCase();
    const matches = people().filter((ext) => !query || ext.name.toLowerCase().includes(query) || String(ext.number).includes(query));
    replace(
      list,
      matches.map((ext) => {
        const inner = [avatar(ext.name, ext.id, 'avatar-small'), h('span', { class: 'picker-name' }, ext.name), h('span', { class: 'picker-ext' }, `Ext. ${ext.number}`)];
        if (multiple) {
          const id = uid('pick');
          const box = h('input', { type: 'checkbox', id, checked: chosen.has(ext.id), value: String(ext.id) });
          box.addEventListener('change', () => {
            if (box.checked) chosen.add(ext.id);
            else chosen.delete(ext.id);
            updateCount();
          });
          return h('li', null, h('label', { class: 'picker-row', for: id }, box, ...inner));
        }
        const button = h('button', { class: 'picker-row', type: 'button', dataset: { extensionId: String(ext.id) } }, ...inner, icon('message', { size: 16, className: 'picker-go' }));
        button.addEventListener('click', () => onPick?.(ext, button));
        return h('li', null, button);
      }),
    );
    if (store.directory.size === 0) status.textContent = 'Loading the directory…';
    else if (matches.length === 0) status.textContent = query ? `Nobody matches “${search.value.trim()}”.` : 'There is nobody else to add.';
    else status.textContent = '';
  }

  function updateCount() {
    count.textContent = chosen.size ? `${chosen.size} selected` : '';
  }

  search.addEventListener('input', render);
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      list.querySelector('button, input')?.focus();
    }
  });
  const off = store.on('directory', render);
  render();
  // Colleagues added since sign-in show up too (there is no live event for it).
  app.loadDirectory();
  updateCount();

  const el = h('div', { class: 'picker' }, h('div', { class: 'filter' }, icon('search', { size: 16, className: 'filter-icon' }), search), list, status, multiple ? count : null);
  return {
    el,
    selected: () => [...chosen],
    focus: () => search.focus(),
    destroy: off,
  };
}
