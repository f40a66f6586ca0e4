// Administration: extensions (create, rename, enable/disable, reset
// password, grant admin, CSV import), the organization's alert tone and
// default country, and phone numbers and carriers (admin-numbers.js).

import { h, replace, uid } from '../dom.js';
import { icon } from '../icons.js';
import { api, describeError } from '../api.js';
import { TONES, playTone, toneLabel } from '../sound.js';
import { openDialog, confirmDialog, withBusy } from './dialog.js';
import { createNumbersAdmin } from './admin-numbers.js';
import { byName, countryName } from '../countries.js';

function field(label, input, hint = null) {
  const id = uid('admin');
  input.id = id;
  const note = hint ? h('small', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  if (note) input.setAttribute('aria-describedby', note.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, note);
}

export function createAdmin(app) {
  const { store } = app;
  let extensions = [];

  // ---- extension table ----
  const tableBody = h('tbody');
  const tableStatus = h('p', { class: 'table-status', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading extensions…');
  const table = h(
    'table',
    { class: 'table', 'aria-label': 'Extensions' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Ext.'), h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    tableBody,
  );

  async function load() {
    try {
      const data = await api.get('/admin/extensions');
      extensions = (data.extensions || []).sort((a, b) => String(a.number).localeCompare(String(b.number), undefined, { numeric: true }));
      render();
      tableStatus.hidden = true;
    } catch (err) {
      replace(tableStatus, describeError(err, 'Could not load the extensions.'));
    }
  }

  function render() {
    replace(
      tableBody,
      extensions.map((ext) => {
        const self = ext.id === store.myId;
        const actions = h('div', { class: 'row-actions' });
        const button = (label, iconName, onClick, extra = {}) => {
          const b = h('button', { class: 'button small', type: 'button', ...extra }, icon(iconName, { size: 14 }), label);
          b.addEventListener('click', () => onClick(b));
          actions.append(b);
          return b;
        };
        button('Edit', 'pencil', () => editName(ext), { 'aria-label': `Edit name of ${ext.name}` });
        button('Reset password', 'key', () => resetPassword(ext), { 'aria-label': `Reset password of ${ext.name}` });
        if (!self) {
          button(ext.role === 'admin' ? 'Revoke admin' : 'Make admin', 'shield', (b) => update(b, ext, { role: ext.role === 'admin' ? 'member' : 'admin' }), { 'aria-label': `${ext.role === 'admin' ? 'Revoke admin from' : 'Make admin'} ${ext.name}` });
          button(ext.disabled ? 'Enable' : 'Disable', ext.disabled ? 'check' : 'close', async (b) => {
            if (!ext.disabled) {
              const ok = await confirmDialog({ title: `Disable ${ext.name}?`, text: 'They are signed out at once and cannot sign in until enabled again.', confirm: 'Disable', danger: true });
              if (!ok) return;
            }
            update(b, ext, { disabled: !ext.disabled });
          }, { 'aria-label': `${ext.disabled ? 'Enable' : 'Disable'} ${ext.name}` });
        }
        return h(
          'tr',
          { class: ext.disabled ? 'disabled' : '', dataset: { number: String(ext.number) } },
          h('td', { class: 'mono' }, ext.number),
          h('td', null, ext.name, self ? h('span', { class: 'muted' }, ' (you)') : null),
          h('td', null, ext.role === 'admin' ? h('span', { class: 'pill pill-admin' }, 'Admin') : 'Member'),
          h('td', null, ext.disabled ? h('span', { class: 'pill pill-off' }, 'Disabled') : h('span', { class: 'pill pill-on' }, 'Active')),
          h('td', null, actions),
        );
      }),
    );
  }

  async function update(button, ext, changes) {
    try {
      const data = await withBusy(button, () => api.patch(`/admin/extensions/${ext.id}`, changes));
      Object.assign(ext, data?.extension || data || changes);
      render();
      app.toast(`${ext.name} updated.`);
      app.loadDirectory();
    } catch (err) {
      app.toast(describeError(err, 'Could not update the extension.'), 'error');
    }
  }

  function editName(ext) {
    const input = h('input', { value: ext.name, required: true, maxlength: '100', autocomplete: 'off' });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const save = h('button', { class: 'button primary', type: 'submit' }, 'Save');
    const cancel = h('button', { class: 'button', type: 'button' }, 'Cancel');
    const form = h('form', { novalidate: true }, field('Display name', input), error, h('div', { class: 'dialog-actions' }, cancel, save));
    const dialog = openDialog({ title: `Edit extension ${ext.number}`, content: form, className: 'dialog-small' });
    cancel.addEventListener('click', () => dialog.close());
    input.select();
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const name = input.value.trim();
      if (!name) {
        error.textContent = 'The name cannot be empty.';
        error.hidden = false;
        return;
      }
      try {
        const data = await withBusy(save, () => api.patch(`/admin/extensions/${ext.id}`, { name }));
        Object.assign(ext, data?.extension || data || { name });
        render();
        dialog.close();
        app.loadDirectory();
      } catch (err) {
        error.textContent = describeError(err, 'Could not save.');
        error.hidden = false;
      }
    });
  }

  function resetPassword(ext) {
    const input = h('input', { type: 'password', required: true, autocomplete: 'new-password' });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const save = h('button', { class: 'button primary', type: 'submit' }, 'Set password');
    const cancel = h('button', { class: 'button', type: 'button' }, 'Cancel');
    const form = h('form', { novalidate: true }, field('New password', input, 'At least 8 characters. Their current sessions are signed out.'), error, h('div', { class: 'dialog-actions' }, cancel, save));
    const dialog = openDialog({ title: `Reset password for ${ext.name}`, content: form, className: 'dialog-small' });
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!input.value) {
        error.textContent = 'Enter a password.';
        error.hidden = false;
        return;
      }
      try {
        await withBusy(save, () => api.post(`/admin/extensions/${ext.id}/password`, { password: input.value }));
        dialog.close();
        app.toast(`Password for ${ext.name} was reset.`);
      } catch (err) {
        error.textContent = describeError(err, 'Could not reset the password.');
        error.hidden = false;
      }
    });
  }

  // ---- create ----
  const number = h('input', { name: 'number', required: true, inputmode: 'numeric', autocomplete: 'off', placeholder: 'e.g. 106' });
  const name = h('input', { name: 'name', required: true, autocomplete: 'off', placeholder: 'e.g. Frank Fox' });
  const password = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' });
  const role = h('select', { name: 'role' }, h('option', { value: 'member' }, 'Member'), h('option', { value: 'admin' }, 'Administrator'));
  const createError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const createButton = h('button', { class: 'button primary', type: 'submit' }, icon('plus', { size: 16 }), 'Create extension');
  const createForm = h('form', { class: 'grid-form', novalidate: true, 'aria-label': 'Create extension' }, field('Extension number', number), field('Name', name), field('Password', password, 'At least 8 characters.'), field('Role', role), createError, h('div', { class: 'form-actions' }, createButton));
  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    createError.hidden = true;
    const body = { number: number.value.trim(), name: name.value.trim(), password: password.value, role: role.value };
    if (!body.number || !body.name || !body.password) {
      createError.textContent = 'Number, name and password are all needed.';
      createError.hidden = false;
      return;
    }
    try {
      await withBusy(createButton, () => api.post('/admin/extensions', body));
      createForm.reset();
      app.toast(`Extension ${body.number} (${body.name}) created.`);
      await load();
      app.loadDirectory();
    } catch (err) {
      createError.textContent = err.code === 'conflict' ? `Extension ${body.number} already exists.` : describeError(err, 'Could not create the extension.');
      createError.hidden = false;
    }
  });

  // ---- CSV import ----
  // The server checks the file at once and answers with a job; the job is
  // followed by `job.updated` frames, and polled when they may not come.
  const csvFile = h('input', { type: 'file', accept: '.csv,text/csv' });
  const csvText = h('textarea', { rows: '5', class: 'mono', placeholder: 'number,name,password,role\n106,Frank Fox,changeme,member' });
  const csvError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const csvStatus = h('p', { class: 'form-status', role: 'status' });
  const csvButton = h('button', { class: 'button primary', type: 'submit' }, icon('upload', { size: 16 }), 'Import');
  const progressFill = h('div', { class: 'progress-fill' });
  const progressBar = h('div', { class: 'progress', role: 'progressbar', 'aria-label': 'Import progress', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, progressFill);
  const progressText = h('p', { class: 'progress-text' });
  const progress = h('div', { class: 'import-progress', hidden: true }, progressText, progressBar);
  const csvResult = h('div', { class: 'import-result', hidden: true });
  csvFile.addEventListener('change', async () => {
    const file = csvFile.files?.[0];
    if (file) csvText.value = await file.text();
  });
  const csvForm = h('form', { class: 'stack', novalidate: true, 'aria-label': 'Import extensions from CSV' }, field('CSV file', csvFile), field('or paste the CSV', csvText, 'Header: number,name,password and optionally role. All rows are created, or none.'), csvError, h('div', { class: 'form-actions' }, csvButton, csvStatus), progress, csvResult);

  const POLL_WHILE_LIVE_MS = 5000; // frames carry progress; polling only catches a missed end
  const POLL_WHILE_OFFLINE_MS = 1000;
  let importJob = null; // the job being followed
  let pollTimer = null;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (!importJob || importJob.state !== 'running') return;
    const id = importJob.id;
    pollTimer = setTimeout(async () => {
      try {
        const data = await api.get(`/admin/jobs/${encodeURIComponent(id)}`);
        if (data?.job) showJob(data.job);
        else schedulePoll();
      } catch (err) {
        if (importJob?.id !== id) return;
        if (err.isNetwork) {
          schedulePoll();
          return;
        }
        // The job is gone (the server restarted): say what is known.
        finishImport();
        csvError.textContent = err.status === 404 ? 'The server lost track of the import (it may have restarted). Check the extensions below before importing again.' : describeError(err, 'Could not follow the import.');
        csvError.hidden = false;
        load();
      }
    }, app.socket.isOpen ? POLL_WHILE_LIVE_MS : POLL_WHILE_OFFLINE_MS);
  }

  function showProgress(job) {
    const percent = job.total ? Math.floor((Math.min(job.done, job.total) * 100) / job.total) : 0;
    progress.hidden = false;
    progressBar.setAttribute('aria-valuenow', String(percent));
    progressBar.setAttribute('aria-valuetext', `${job.done} of ${job.total} rows`);
    progressFill.style.width = `${percent}%`;
    progressText.textContent = `Importing ${plural(job.total, 'extension', 'extensions')}: ${job.done} of ${job.total} prepared…`;
  }

  function finishImport() {
    clearTimeout(pollTimer);
    importJob = null;
    progress.hidden = true;
    // A disabled button drops the keyboard focus; give it back.
    const focusLost = document.activeElement === csvButton || document.activeElement === document.body;
    csvButton.disabled = false;
    csvButton.classList.remove('busy');
    csvButton.removeAttribute('aria-busy');
    if (focusLost && csvButton.isConnected) csvButton.focus();
  }

  function showJob(job) {
    if (!importJob || job.id !== importJob.id) return;
    // Frames and polls may cross: a late one never undoes progress.
    if (job.state === 'running' && job.done < importJob.done) return;
    importJob = job;
    if (job.state === 'running') {
      showProgress(job);
      schedulePoll();
      return;
    }
    finishImport();
    if (job.state === 'succeeded') {
      csvStatus.textContent = `Created ${plural(job.created, 'extension', 'extensions')}.`;
      csvText.value = '';
      csvFile.value = '';
      load();
      app.loadDirectory();
      return;
    }
    if (job.refused?.length) {
      showRefused(job);
      return;
    }
    csvError.textContent = job.error || 'The import failed; nothing was created.';
    csvError.hidden = false;
  }

  function showRefused(job) {
    const headingId = uid('refused');
    const heading = h('h3', { class: 'import-result-title', id: headingId, tabindex: '-1' }, `${plural(job.refused.length, 'row was', 'rows were')} refused; nothing was created`);
    const rows = job.refused.map((row) => h('tr', null, h('td', { class: 'mono' }, String(row.line)), h('td', { class: 'mono' }, row.number), h('td', null, row.reason)));
    const table = h(
      'table',
      { class: 'table refused-table', 'aria-labelledby': headingId },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Line'), h('th', { scope: 'col' }, 'Ext.'), h('th', { scope: 'col' }, 'Reason'))),
      h('tbody', null, rows),
    );
    replace(csvResult, heading, h('p', { class: 'field-hint' }, 'Fix or remove these rows, then import the file again.'), h('div', { class: 'table-wrap' }, table));
    csvResult.hidden = false;
    csvStatus.textContent = 'The import was refused.';
    // Keyboard and screen reader users land on the explanation.
    heading.focus();
  }

  // The latest frame of recent jobs: a small import's frames can arrive
  // before the answer that names its job.
  const recentJobs = new Map();
  const offFrames = app.socket.on('frame', (frame) => {
    const job = frame.type === 'job.updated' ? frame.data?.job : null;
    if (!job?.id) return;
    recentJobs.delete(job.id);
    recentJobs.set(job.id, job);
    if (recentJobs.size > 4) recentJobs.delete(recentJobs.keys().next().value);
    showJob(job);
  });

  csvForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (importJob) return;
    csvError.hidden = true;
    csvResult.hidden = true;
    replace(csvResult);
    csvStatus.textContent = '';
    const text = csvText.value.trim();
    if (!text) {
      csvError.textContent = 'Choose a file or paste the CSV first.';
      csvError.hidden = false;
      return;
    }
    let job;
    try {
      const data = await withBusy(csvButton, () => api.post('/admin/extensions/import', `${text}\n`, { contentType: 'text/csv' }));
      job = data?.job;
    } catch (err) {
      csvError.textContent = describeError(err, 'The import failed.');
      csvError.hidden = false;
      return;
    }
    if (!job) {
      csvError.textContent = 'The server did not say how the import went. Check the extensions below.';
      csvError.hidden = false;
      load();
      return;
    }
    // The button stays busy until the job ends.
    csvButton.disabled = true;
    csvButton.classList.add('busy');
    csvButton.setAttribute('aria-busy', 'true');
    importJob = job;
    showProgress(job);
    csvStatus.textContent = `Import started: ${plural(job.total, 'row', 'rows')}.`;
    const early = recentJobs.get(job.id);
    showJob(early && (early.state !== 'running' || early.done > job.done) ? early : job);
  });

  // ---- alert tone ----
  const toneSelect = h('select', { name: 'alert_tone', disabled: true });
  const toneStatus = h('p', { class: 'form-status', role: 'status' });
  const toneSave = h('button', { class: 'button primary', type: 'submit', disabled: true }, 'Save tone');
  const tonePlay = h('button', { class: 'button', type: 'button', 'aria-label': 'Play the selected tone' }, icon('play', { size: 14 }), 'Preview');
  tonePlay.addEventListener('click', () => playTone(toneSelect.value, { force: true }));
  const toneForm = h('form', { class: 'tone-form', novalidate: true, 'aria-label': 'Alert tone' }, field('Alert tone for everyone', toneSelect), h('div', { class: 'form-actions' }, tonePlay, toneSave, toneStatus));
  async function loadTone() {
    try {
      const data = await api.get('/admin/organization');
      const tones = data.alert_tones?.length ? data.alert_tones : TONES;
      replace(toneSelect, tones.map((t) => h('option', { value: t, selected: t === data.alert_tone }, toneLabel(t))));
      toneSelect.disabled = false;
      toneSave.disabled = false;
      replace(countrySelect, byName(data.countries || [data.default_country]).map((c) => h('option', { value: c, selected: c === data.default_country }, countryName(c))));
      countrySelect.disabled = false;
      countrySave.disabled = false;
    } catch (err) {
      toneStatus.textContent = describeError(err, 'Could not load the organization.');
    }
  }
  toneForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    toneStatus.textContent = '';
    try {
      await withBusy(toneSave, () => api.patch('/admin/organization', { alert_tone: toneSelect.value }));
      store.me.organization.alert_tone = toneSelect.value;
      store.emit('me', store.me);
      toneStatus.textContent = `Saved: ${toneLabel(toneSelect.value)}.`;
    } catch (err) {
      toneStatus.textContent = describeError(err, 'Could not save the tone.');
    }
  });

  // ---- default country ----
  const countrySelect = h('select', { name: 'default_country', disabled: true });
  const countryStatus = h('p', { class: 'form-status', role: 'status' });
  const countrySave = h('button', { class: 'button primary', type: 'submit', disabled: true }, 'Save country');
  const countryForm = h('form', { class: 'tone-form', novalidate: true, 'aria-label': 'Default country' }, field('Default country for phone numbers', countrySelect, 'Numbers typed without + belong to it, and its numbers are shown in national form.'), h('div', { class: 'form-actions' }, countrySave, countryStatus));
  countryForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    countryStatus.textContent = '';
    try {
      const data = await withBusy(countrySave, () => api.patch('/admin/organization', { default_country: countrySelect.value }));
      store.me.organization.default_country = data.default_country;
      store.emit('me', store.me);
      countryStatus.textContent = `Saved: ${countryName(data.default_country)}.`;
      numbersAdmin.reload();
    } catch (err) {
      countryStatus.textContent = describeError(err, 'Could not save the country.');
    }
  });

  const numbersAdmin = createNumbersAdmin(app);

  const card = (title, description, ...content) => {
    const id = uid('card');
    return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { class: 'card-title', id }, title), description ? h('p', { class: 'card-description' }, description) : null, ...content);
  };

  const el = h(
    'main',
    { class: 'page' },
    h(
      'div',
      { class: 'page-inner wide' },
      h('h1', { class: 'page-title' }, 'Administration'),
      card('Extensions', 'Everyone who can sign in to your organization.', h('div', { class: 'table-wrap' }, table), tableStatus),
      card('New extension', null, createForm),
      card('Import from CSV', null, csvForm),
      card('Organization', 'The alert tone is played for new messages, unless a person mutes it.', h('div', { class: 'stack' }, toneForm, countryForm)),
      numbersAdmin.el,
    ),
  );

  load();
  loadTone();
  return {
    el,
    destroy() {
      offFrames();
      clearTimeout(pollTimer);
    },
  };
}
