// Administration of texting: carrier connections (with the webhook URLs to
// paste into the carrier's console) and business numbers (SMS on or off,
// the connection serving each, the extensions that text from each).

import { h, replace, uid } from '../dom.js';
import { icon } from '../icons.js';
import { api, describeError } from '../api.js';
import { withBusy } from './dialog.js';
import { countryName } from '../countries.js';

const KINDS = [
  { value: 'twilio', label: 'Twilio' },
  { value: 'telnyx', label: 'Telnyx' },
  { value: 'simulator', label: 'Simulator' },
];
const kindLabel = (kind) => KINDS.find((k) => k.value === kind)?.label || kind;

/** What each webhook URL is for, in the order the server lists them. */
function webhookLabels(kind) {
  if (kind === 'twilio') return ['Incoming messages', 'Delivery status'];
  return ['Webhook'];
}

function field(label, input, hint = null) {
  const id = uid('numbers');
  input.id = id;
  const note = hint ? h('small', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  if (note) input.setAttribute('aria-describedby', note.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, note);
}

/** Copies `text`; where the clipboard is not available, selects `input` so Ctrl+C does it. */
async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.focus();
    input.select();
    return false;
  }
}

export function createNumbersAdmin(app) {
  let connections = [];
  let numbers = [];
  let extensions = [];

  // ---- connections ----
  const connectionList = h('ul', { class: 'connection-list', 'aria-label': 'Carrier connections' });
  const connectionStatus = h('p', { class: 'table-status', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading carrier connections…');

  function renderConnections() {
    if (!connections.length) {
      replace(connectionList);
      replace(connectionStatus, 'No carrier connections yet — add one to send and receive texts through Twilio, Telnyx or the built-in simulator.');
      connectionStatus.hidden = false;
      return;
    }
    connectionStatus.hidden = true;
    replace(connectionList, connections.map((c) => {
      const facts = [];
      if (c.account_sid) facts.push(h('span', null, 'Account ', h('span', { class: 'mono' }, c.account_sid)));
      if (c.api_key_sid) facts.push(h('span', null, 'API key ', h('span', { class: 'mono' }, c.api_key_sid)));
      if (c.secret_hint) facts.push(h('span', null, c.kind === 'telnyx' ? 'API key ' : 'Auth token ', h('span', { class: 'mono' }, c.secret_hint)));
      if (c.api_key_secret_hint) facts.push(h('span', null, 'API key secret ', h('span', { class: 'mono' }, c.api_key_secret_hint)));
      if (c.base_url) facts.push(h('span', null, 'Base URL ', h('span', { class: 'mono' }, c.base_url)));
      const labels = webhookLabels(c.kind);
      const copyStatus = h('p', { class: 'form-status', role: 'status' });
      const urls = (c.webhook_urls || []).map((url, i) => {
        const label = labels[i] || 'Webhook';
        const input = h('input', { value: url, readOnly: true, class: 'mono', spellcheck: 'false' });
        const button = h('button', { class: 'button small', type: 'button', 'aria-label': `Copy the ${label.toLowerCase()} URL of ${c.name}` }, icon('copy', { size: 14 }), 'Copy');
        button.addEventListener('click', async () => {
          const copied = await copy(url, input);
          copyStatus.textContent = copied ? `${label} URL copied.` : 'Press Ctrl+C (⌘C) to copy the selected URL.';
        });
        return h('div', { class: 'webhook' }, field(`${label} URL`, input), button);
      });
      return h(
        'li',
        { class: 'connection', dataset: { connection: String(c.id) } },
        h('div', { class: 'connection-head' }, h('strong', null, c.name), h('span', { class: `pill pill-kind pill-${c.kind}` }, kindLabel(c.kind))),
        facts.length ? h('p', { class: 'connection-facts' }, facts) : null,
        urls.length
          ? h('div', { class: 'webhooks' }, h('p', { class: 'field-hint' }, `Paste ${urls.length === 1 ? 'this URL' : 'these URLs'} into ${kindLabel(c.kind)}'s console:`), urls, copyStatus)
          : h('p', { class: 'field-hint' }, 'The simulator needs no webhooks.'),
      );
    }));
  }

  // ---- add a connection: the fields follow the kind ----
  const kind = h('select', { name: 'kind' }, KINDS.map((k) => h('option', { value: k.value }, k.label)));
  const name = h('input', { name: 'name', required: true, autocomplete: 'off', maxlength: '60', placeholder: 'e.g. Main account' });
  const inputs = {
    account_sid: h('input', { autocomplete: 'off', spellcheck: 'false', placeholder: 'AC…' }),
    secret: h('input', { type: 'password', autocomplete: 'off' }),
    api_key_sid: h('input', { autocomplete: 'off', spellcheck: 'false', placeholder: 'SK…' }),
    api_key_secret: h('input', { type: 'password', autocomplete: 'off' }),
    telnyx_key: h('input', { type: 'password', autocomplete: 'off', placeholder: 'KEY…' }),
    public_key: h('input', { autocomplete: 'off', spellcheck: 'false' }),
    base_url: h('input', { type: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://…' }),
  };
  const twilioFields = h(
    'div',
    { class: 'kind-fields' },
    field('Account SID', inputs.account_sid),
    field('Auth token', inputs.secret, 'Required: Twilio signs its webhooks with it.'),
    field('API key SID (optional)', inputs.api_key_sid, 'To send with an API key instead of the auth token.'),
    field('API key secret (optional)', inputs.api_key_secret),
  );
  const telnyxFields = h(
    'div',
    { class: 'kind-fields' },
    field('API key', inputs.telnyx_key),
    field('Public key', inputs.public_key, 'From Telnyx’s portal (base64); it checks their webhooks.'),
  );
  const baseUrlField = field('Base URL (optional)', inputs.base_url, 'Only when not the carrier’s own API.');
  const connectionError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const connectionButton = h('button', { class: 'button primary', type: 'submit' }, icon('plus', { size: 16 }), 'Add connection');
  const connectionForm = h(
    'form',
    { class: 'stack', novalidate: true, 'aria-label': 'Add carrier connection' },
    h('div', { class: 'kind-fields' }, field('Kind', kind), field('Name', name)),
    twilioFields,
    telnyxFields,
    baseUrlField,
    connectionError,
    h('div', { class: 'form-actions' }, connectionButton),
  );
  function showKindFields() {
    twilioFields.hidden = kind.value !== 'twilio';
    telnyxFields.hidden = kind.value !== 'telnyx';
    baseUrlField.hidden = kind.value === 'simulator';
  }
  kind.addEventListener('change', showKindFields);
  showKindFields();

  connectionForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    connectionError.hidden = true;
    const value = (input) => input.value.trim() || undefined;
    const body = { kind: kind.value, name: name.value.trim() };
    if (kind.value === 'twilio') {
      Object.assign(body, {
        account_sid: value(inputs.account_sid),
        secret: inputs.secret.value || undefined,
        api_key_sid: value(inputs.api_key_sid),
        api_key_secret: inputs.api_key_secret.value || undefined,
      });
    } else if (kind.value === 'telnyx') {
      Object.assign(body, { secret: inputs.telnyx_key.value || undefined, public_key: value(inputs.public_key) });
    }
    if (kind.value !== 'simulator') body.base_url = value(inputs.base_url);
    if (!body.name) {
      connectionError.textContent = 'Give the connection a name.';
      connectionError.hidden = false;
      name.focus();
      return;
    }
    try {
      const data = await withBusy(connectionButton, () => api.post('/admin/carriers', body));
      connectionForm.reset();
      showKindFields();
      addConnection.open = false;
      app.toast(`Connection ${data.connection.name} added.`);
      await load();
    } catch (err) {
      connectionError.textContent = describeError(err, 'Could not add the connection.');
      connectionError.hidden = false;
    }
  });

  // ---- numbers ----
  const numbersBody = h('tbody');
  const numbersStatus = h('p', { class: 'table-status', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading business numbers…');
  const numbersError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const numbersTable = h(
    'table',
    { class: 'table numbers-table', 'aria-label': 'Business numbers' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Number'), h('th', { scope: 'col' }, 'SMS'), h('th', { scope: 'col' }, 'Carrier'), h('th', { scope: 'col' }, 'Extensions'))),
    numbersBody,
  );

  const extensionName = (id) => {
    const ext = extensions.find((e) => e.id === id);
    return ext ? `${ext.number} ${ext.name}` : `#${id}`;
  };

  async function change(request, what) {
    numbersError.hidden = true;
    try {
      const data = await request();
      const updated = data?.number;
      if (updated) numbers = numbers.map((n) => (n.id === updated.id ? updated : n));
      renderNumbers();
      return true;
    } catch (err) {
      numbersError.textContent = describeError(err, `Could not change ${what}.`);
      numbersError.hidden = false;
      renderNumbers();
      return false;
    }
  }

  // Re-rendering the table must not lose the keyboard's place.
  let openPicker = null;
  function renderNumbers() {
    const focusKey = document.activeElement?.dataset?.focusKey;
    renderNumberRows();
    if (focusKey) numbersBody.querySelector(`[data-focus-key="${focusKey}"]`)?.focus();
  }

  function renderNumberRows() {
    numbersTable.hidden = !numbers.length;
    if (!numbers.length) {
      replace(numbersBody);
      replace(numbersStatus, 'No business numbers yet — add one to let extensions text customers.');
      numbersStatus.hidden = false;
      return;
    }
    numbersStatus.hidden = true;
    replace(numbersBody, numbers.map((n) => {
      const sms = h('input', { type: 'checkbox', role: 'switch', class: 'switch-input', checked: n.sms_enabled, 'aria-label': `SMS for ${n.display}`, dataset: { focusKey: `sms-${n.id}` } });
      sms.addEventListener('change', () => {
        sms.disabled = true;
        change(() => api.patch(`/admin/numbers/${n.id}`, { sms_enabled: sms.checked }), `SMS for ${n.display}`);
      });
      const carrier = h(
        'select',
        { 'aria-label': `Carrier for ${n.display}`, dataset: { focusKey: `carrier-${n.id}` } },
        h('option', { value: '', selected: n.connection_id == null }, 'None'),
        connections.map((c) => h('option', { value: String(c.id), selected: c.id === n.connection_id }, `${c.name} (${kindLabel(c.kind)})`)),
      );
      carrier.addEventListener('change', () => {
        carrier.disabled = true;
        const connectionId = carrier.value ? Number(carrier.value) : null;
        change(() => api.patch(`/admin/numbers/${n.id}`, { connection_id: connectionId }), `the carrier of ${n.display}`);
      });
      const assigned = new Set(n.extension_ids || []);
      const summaryText = assigned.size ? [...assigned].map(extensionName).join(', ') : 'Nobody';
      const boxes = extensions.filter((e) => !e.disabled || assigned.has(e.id)).map((e) => {
        const id = uid('assign');
        const box = h('input', { type: 'checkbox', id, checked: assigned.has(e.id), dataset: { focusKey: `assign-${n.id}-${e.id}` } });
        box.addEventListener('change', () => {
          box.disabled = true;
          const path = `/admin/numbers/${n.id}/extensions/${e.id}`;
          change(() => (box.checked ? api.put(path) : api.delete(path)), `who texts from ${n.display}`);
        });
        return h('li', null, box, h('label', { for: id }, h('span', { class: 'mono' }, e.number), ' ', e.name));
      });
      const picker = h(
        'details',
        { class: 'assign-picker', open: openPicker === n.id },
        h('summary', { 'aria-label': `Extensions that text from ${n.display}: ${summaryText}`, dataset: { focusKey: `picker-${n.id}` } }, h('span', { class: 'assign-summary' }, summaryText)),
        h('fieldset', { class: 'assign-list' }, h('legend', { class: 'visually-hidden' }, `Extensions that text from ${n.display}`), h('ul', null, boxes)),
      );
      picker.addEventListener('toggle', () => {
        if (picker.open) openPicker = n.id;
        else if (openPicker === n.id) openPicker = null;
      });
      return h(
        'tr',
        { dataset: { number: n.number } },
        h('td', null, h('span', { class: 'number-display' }, n.display), n.display !== n.number ? h('small', { class: 'muted mono number-e164' }, n.number) : null),
        h('td', null, h('span', { class: 'switch' }, sms, h('span', { class: 'switch-track', 'aria-hidden': 'true' }))),
        h('td', null, carrier),
        h('td', null, picker),
      );
    }));
  }

  // ---- add a number ----
  const numberInput = h('input', { name: 'number', required: true, autocomplete: 'off', inputmode: 'tel', placeholder: 'e.g. (415) 555-0100 or +14155550100' });
  const numberHint = h('span');
  const smsInput = h('input', { type: 'checkbox', checked: true });
  const smsId = uid('sms');
  smsInput.id = smsId;
  const numberCarrier = h('select', { name: 'connection_id' });
  const numberError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const numberButton = h('button', { class: 'button primary', type: 'submit' }, icon('plus', { size: 16 }), 'Add number');
  const numberForm = h(
    'form',
    { class: 'number-form', novalidate: true, 'aria-label': 'Add business number' },
    field('Phone number', numberInput, numberHint),
    field('Carrier', numberCarrier),
    h('div', { class: 'field checkbox-field' }, h('span', { class: 'checkbox-row' }, smsInput, h('label', { for: smsId }, 'Sends and receives texts'))),
    numberError,
    h('div', { class: 'form-actions' }, numberButton),
  );
  function renderNumberForm() {
    const country = app.store.me?.organization?.default_country || 'US';
    numberHint.textContent = `As dialled in ${countryName(country)}, or with + and the country code.`;
    const chosen = numberCarrier.value;
    replace(numberCarrier, h('option', { value: '' }, 'None'), connections.map((c) => h('option', { value: String(c.id) }, `${c.name} (${kindLabel(c.kind)})`)));
    // A new number goes on the only connection there is, unless the
    // administrator picked otherwise.
    if (chosen && [...numberCarrier.options].some((o) => o.value === chosen)) numberCarrier.value = chosen;
    else if (connections.length === 1) numberCarrier.value = String(connections[0].id);
  }
  numberForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    numberError.hidden = true;
    const typed = numberInput.value.trim();
    if (!typed) {
      numberError.textContent = 'Type the phone number to add.';
      numberError.hidden = false;
      numberInput.focus();
      return;
    }
    const body = { number: typed, sms_enabled: smsInput.checked, connection_id: numberCarrier.value ? Number(numberCarrier.value) : null };
    try {
      const data = await withBusy(numberButton, () => api.post('/admin/numbers', body));
      numberInput.value = '';
      smsInput.checked = true;
      app.toast(`${data.number.display} added.`);
      await load();
    } catch (err) {
      numberError.textContent = err.code === 'conflict' ? `${typed} is already a business number.` : describeError(err, 'Could not add the number.');
      numberError.hidden = false;
      numberInput.focus();
    }
  });

  async function load() {
    try {
      const [c, n, e] = await Promise.all([api.get('/admin/carriers'), api.get('/admin/numbers'), api.get('/admin/extensions')]);
      connections = c.connections || [];
      numbers = n.numbers || [];
      extensions = (e.extensions || []).sort((a, b) => String(a.number).localeCompare(String(b.number), undefined, { numeric: true }));
      renderConnections();
      renderNumberForm();
      renderNumbers();
    } catch (err) {
      const message = describeError(err, 'Could not load numbers and carriers.');
      replace(connectionStatus, message);
      replace(numbersStatus, message);
    }
  }

  const addConnection = h('details', { class: 'add-connection' }, h('summary', null, icon('plus', { size: 14 }), 'Add a carrier connection'), connectionForm);
  const headingId = uid('card');
  const sub = (title) => h('h3', { class: 'card-subtitle' }, title);
  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': headingId },
    h('h2', { class: 'card-title', id: headingId }, 'Phone numbers & carriers'),
    h('p', { class: 'card-description' }, 'Business numbers extensions text customers from, and the carrier accounts that carry the texts.'),
    sub('Business numbers'),
    h('div', { class: 'table-wrap' }, numbersTable),
    numbersStatus,
    numbersError,
    numberForm,
    sub('Carrier connections'),
    connectionList,
    connectionStatus,
    addConnection,
  );

  load();
  return { el, reload: load };
}
