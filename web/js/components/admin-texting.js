// Administration of texting: carrier connections (with the webhook URLs to
// paste into each carrier's console; secrets are never shown back, only
// their last characters) and business numbers (texting on or off, which
// connection serves them, which extensions text from them).

import { h, replace, uid } from '../dom.js';
import { icon } from '../icons.js';
import { api, describeError } from '../api.js';
import { withBusy, confirmDialog } from './dialog.js';

const KINDS = {
  twilio: 'Twilio-compatible',
  telnyx: 'Telnyx',
  simulator: 'Simulator',
};

function field(label, input, hint = null) {
  const id = uid('texting');
  input.id = id;
  const note = hint ? h('small', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  if (note) input.setAttribute('aria-describedby', note.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, note);
}

function card(title, description, ...content) {
  const id = uid('card');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { class: 'card-title', id }, title), description ? h('p', { class: 'card-description' }, description) : null, ...content);
}

/** What a webhook URL is for, from its path. */
function webhookLabel(url) {
  if (url.endsWith('/messages')) return 'Incoming messages';
  if (url.endsWith('/status')) return 'Status callback';
  return 'Webhook';
}

export function createTextingAdmin(app) {
  const { store } = app;
  let connections = [];
  let numbers = [];
  let extensions = [];

  // ---- business numbers ----
  const numbersBody = h('tbody');
  const numbersStatus = h('p', { class: 'table-status', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading business numbers…');
  const numbersTable = h(
    'table',
    { class: 'table numbers-table', 'aria-label': 'Business numbers' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Number'), h('th', { scope: 'col' }, 'Texts'), h('th', { scope: 'col' }, 'Carrier'), h('th', { scope: 'col' }, 'Extensions'))),
    numbersBody,
  );

  function connectionOptions(selected) {
    return [
      h('option', { value: '', selected: selected == null }, 'None'),
      ...connections.map((c) => h('option', { value: String(c.id), selected: c.id === selected }, `${c.name} (${KINDS[c.kind] || c.kind})`)),
    ];
  }

  function extensionName(id) {
    const ext = extensions.find((e) => e.id === id);
    return ext ? `${ext.number} ${ext.name}` : `Extension ${id}`;
  }

  function renderNumbers() {
    numbersStatus.hidden = true;
    if (numbers.length === 0) {
      replace(numbersBody, h('tr', null, h('td', { colspan: '4', class: 'muted' }, 'No business numbers yet. Add one below.')));
      return;
    }
    replace(numbersBody, numbers.map((n) => {
      const label = n.display || n.number;
      const sms = h('input', { type: 'checkbox', role: 'switch', class: 'switch-input', checked: n.sms_enabled, 'aria-label': `${label} sends and receives texts` });
      sms.addEventListener('change', () => patchNumber(n, { sms_enabled: sms.checked }, sms));
      const carrier = h('select', { 'aria-label': `Carrier connection of ${label}` }, connectionOptions(n.connection_id ?? null));
      carrier.addEventListener('change', () => patchNumber(n, { connection_id: carrier.value ? Number(carrier.value) : null }, carrier));
      const assigned = (n.extension_ids || []).map((id) => {
        const remove = h('button', { class: 'chip-remove', type: 'button', 'aria-label': `Take ${label} from ${extensionName(id)}`, title: 'Take the number away' }, icon('close', { size: 12 }));
        remove.addEventListener('click', async () => {
          const ok = await confirmDialog({ title: `Take ${label} from ${extensionName(id)}?`, text: 'Their text conversations from this number leave their list; the history stays for the others.', confirm: 'Take away', danger: true });
          if (ok) assign(n, id, false, remove);
        });
        return h('li', { class: 'chip' }, h('span', null, extensionName(id)), remove);
      });
      const unassigned = extensions.filter((e) => !e.disabled && !(n.extension_ids || []).includes(e.id));
      const add = h('select', { class: 'assign-select', 'aria-label': `Give ${label} to an extension` }, h('option', { value: '' }, 'Give to…'), unassigned.map((e) => h('option', { value: String(e.id) }, `${e.number} ${e.name}`)));
      add.addEventListener('change', () => {
        if (add.value) assign(n, Number(add.value), true, add);
      });
      return h(
        'tr',
        { dataset: { number: n.number } },
        h('td', null, h('div', { class: 'number-cell' }, h('strong', null, label), h('span', { class: 'mono muted' }, n.number))),
        h('td', null, h('span', { class: 'switch' }, sms, h('span', { class: 'switch-track', 'aria-hidden': 'true' }))),
        h('td', null, carrier),
        h('td', null, h('div', { class: 'assign-cell' }, h('ul', { class: 'chips', 'aria-label': `Extensions texting from ${label}` }, assigned), unassigned.length ? add : null)),
      );
    }));
  }

  function replaceNumber(updated) {
    if (!updated) return;
    numbers = numbers.map((n) => (n.id === updated.id ? updated : n));
    renderNumbers();
  }

  async function patchNumber(n, changes, control) {
    control.disabled = true;
    try {
      const data = await api.patch(`/admin/numbers/${n.id}`, changes);
      replaceNumber(data?.number);
      app.loadNumbers();
    } catch (err) {
      app.toast(describeError(err, 'Could not change the number.'), 'error');
      renderNumbers();
    } finally {
      control.disabled = false;
    }
  }

  async function assign(n, extensionId, on, control) {
    control.disabled = true;
    try {
      const path = `/admin/numbers/${n.id}/extensions/${extensionId}`;
      const data = on ? await api.put(path, {}) : await api.delete(path);
      replaceNumber(data?.number);
      app.toast(on ? `${extensionName(extensionId)} now texts from ${n.display || n.number}.` : `${n.display || n.number} was taken from ${extensionName(extensionId)}.`);
      if (extensionId === store.myId) app.loadNumbers();
    } catch (err) {
      app.toast(describeError(err, 'Could not change who texts from the number.'), 'error');
      renderNumbers();
    } finally {
      control.disabled = false;
    }
  }

  // New number
  const numberInput = h('input', { name: 'number', type: 'tel', inputmode: 'tel', required: true, autocomplete: 'off', placeholder: '(415) 555-0100' });
  const numberCarrier = h('select', { name: 'connection' });
  const numberSms = h('input', { type: 'checkbox', checked: true, class: 'inline-check' });
  const numberError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const numberAdd = h('button', { class: 'button primary', type: 'submit' }, 'Add number');
  const smsId = uid('texting');
  numberSms.id = smsId;
  const numberForm = h(
    'form',
    { class: 'grid-form numbers-form', novalidate: true, 'aria-label': 'New business number' },
    field('Number', numberInput, 'E.164 (+1…) or as dialled locally'),
    field('Carrier connection', numberCarrier),
    h('div', { class: 'field check-field' }, h('label', { for: smsId, class: 'check-label' }, numberSms, 'Sends and receives texts')),
    numberError,
    h('div', { class: 'form-actions' }, numberAdd),
  );
  numberForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    numberError.hidden = true;
    if (!numberInput.value.trim()) {
      numberError.textContent = 'Type the number.';
      numberError.hidden = false;
      numberInput.focus();
      return;
    }
    const body = { number: numberInput.value.trim(), sms_enabled: numberSms.checked };
    if (numberCarrier.value) body.connection_id = Number(numberCarrier.value);
    try {
      const data = await withBusy(numberAdd, () => api.post('/admin/numbers', body));
      if (data?.number) numbers = [...numbers, data.number].sort((a, b) => a.number.localeCompare(b.number));
      renderNumbers();
      numberInput.value = '';
      app.toast(`${data?.number?.display || body.number} added. Give it to the extensions that text from it.`);
    } catch (err) {
      numberError.textContent = describeError(err, 'Could not add the number.');
      numberError.hidden = false;
    }
  });

  // ---- carrier connections ----
  const connectionList = h('ul', { class: 'connection-list', 'aria-label': 'Carrier connections' });
  const connectionStatus = h('p', { class: 'table-status', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading carrier connections…');

  function renderConnections() {
    connectionStatus.hidden = true;
    replace(numberCarrier, connectionOptions(connections.length === 1 ? connections[0].id : null));
    if (connections.length === 0) {
      replace(connectionList, h('li', { class: 'muted' }, 'No carrier connections yet. Add one below.'));
      return;
    }
    replace(connectionList, connections.map((c) => {
      const facts = [];
      if (c.account_sid) facts.push(['Account SID', c.account_sid]);
      if (c.api_key_sid) facts.push(['API key SID', c.api_key_sid]);
      if (c.secret_hint) facts.push([c.kind === 'telnyx' ? 'API key' : 'Auth token', `…${c.secret_hint}`]);
      if (c.api_key_secret_hint) facts.push(['API key secret', `…${c.api_key_secret_hint}`]);
      if (c.public_key) facts.push(['Public key', c.public_key]);
      if (c.base_url) facts.push(['API base URL', c.base_url]);
      const hooks = (c.webhook_urls || []).map((url) => {
        const input = h('input', { value: url, readOnly: true, class: 'mono webhook-url', 'aria-label': `${webhookLabel(url)} URL of ${c.name}` });
        input.addEventListener('focus', () => input.select());
        const copy = h('button', { class: 'button small', type: 'button' }, 'Copy');
        copy.addEventListener('click', async () => {
          try {
            await navigator.clipboard.writeText(url);
            app.toast('Copied.');
          } catch {
            input.focus();
            app.toast('Select the URL and copy it with your keyboard.');
          }
        });
        return h('div', { class: 'webhook' }, h('span', { class: 'webhook-label' }, webhookLabel(url)), h('div', { class: 'webhook-row' }, input, copy));
      });
      return h(
        'li',
        { class: 'connection', dataset: { connectionId: String(c.id) } },
        h('div', { class: 'connection-head' }, h('strong', null, c.name), h('span', { class: 'pill pill-off' }, KINDS[c.kind] || c.kind)),
        facts.length ? h('dl', { class: 'facts connection-facts' }, facts.flatMap(([k, v]) => [h('dt', null, k), h('dd', { class: 'mono' }, v)])) : null,
        hooks.length ? h('div', { class: 'webhooks' }, h('p', { class: 'field-hint' }, 'Paste these into the carrier’s console:'), hooks) : c.kind === 'simulator' ? h('p', { class: 'field-hint' }, 'Built in: texts go to the phone simulator page, no carrier account needed.') : null,
      );
    }));
  }

  // New connection
  const kind = h('select', { name: 'kind' }, Object.entries(KINDS).map(([value, label]) => h('option', { value }, label)));
  const inputs = {
    name: h('input', { name: 'name', required: true, maxlength: '60', autocomplete: 'off', placeholder: 'e.g. Main Twilio account' }),
    account_sid: h('input', { name: 'account_sid', autocomplete: 'off', spellcheck: 'false', placeholder: 'AC…' }),
    secret: h('input', { name: 'secret', type: 'password', autocomplete: 'new-password' }),
    api_key_sid: h('input', { name: 'api_key_sid', autocomplete: 'off', spellcheck: 'false', placeholder: 'SK… (optional)' }),
    api_key_secret: h('input', { name: 'api_key_secret', type: 'password', autocomplete: 'new-password' }),
    public_key: h('input', { name: 'public_key', autocomplete: 'off', spellcheck: 'false' }),
    base_url: h('input', { name: 'base_url', type: 'url', autocomplete: 'off', placeholder: 'Leave empty for the carrier’s own' }),
  };
  const secretLabel = h('span');
  const fields = {
    name: field('Name', inputs.name),
    account_sid: field('Account SID', inputs.account_sid),
    secret: field('Secret', inputs.secret),
    api_key_sid: field('API key SID', inputs.api_key_sid, 'Optional: call the API with an API key instead of the auth token.'),
    api_key_secret: field('API key secret', inputs.api_key_secret),
    public_key: field('Public key', inputs.public_key, 'The base64 Ed25519 key from the Telnyx portal; webhooks are checked with it.'),
    base_url: field('API base URL', inputs.base_url),
  };
  fields.secret.querySelector('label').replaceChildren(secretLabel);
  const SHOWN = {
    twilio: ['name', 'account_sid', 'secret', 'api_key_sid', 'api_key_secret', 'base_url'],
    telnyx: ['name', 'secret', 'public_key', 'base_url'],
    simulator: ['name'],
  };
  const connectionError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const connectionAdd = h('button', { class: 'button primary', type: 'submit' }, 'Add connection');
  const connectionForm = h(
    'form',
    { class: 'stack connection-form', novalidate: true, 'aria-label': 'New carrier connection' },
    field('Kind', kind),
    Object.values(fields),
    h('p', { class: 'field-hint' }, 'Secrets are stored encrypted and never shown again; only their last characters are.'),
    connectionError,
    h('div', { class: 'form-actions' }, connectionAdd),
  );
  function showKind() {
    const shown = SHOWN[kind.value] || [];
    for (const [name, el] of Object.entries(fields)) el.hidden = !shown.includes(name);
    secretLabel.textContent = kind.value === 'telnyx' ? 'API key' : 'Auth token';
  }
  kind.addEventListener('change', showKind);
  showKind();
  connectionForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    connectionError.hidden = true;
    const body = { kind: kind.value };
    for (const name of SHOWN[kind.value] || []) {
      const value = inputs[name].value.trim();
      if (value) body[name] = value;
    }
    if (!body.name) {
      connectionError.textContent = 'Give the connection a name.';
      connectionError.hidden = false;
      inputs.name.focus();
      return;
    }
    try {
      const data = await withBusy(connectionAdd, () => api.post('/admin/carriers', body));
      if (data?.connection) connections = [...connections, data.connection].sort((a, b) => a.name.localeCompare(b.name));
      for (const input of Object.values(inputs)) input.value = '';
      renderConnections();
      renderNumbers();
      app.toast(`${body.name} added.`);
    } catch (err) {
      connectionError.textContent = describeError(err, 'Could not add the connection.');
      connectionError.hidden = false;
    }
  });

  async function load() {
    const [c, n, e] = await Promise.allSettled([api.get('/admin/carriers'), api.get('/admin/numbers'), api.get('/admin/extensions')]);
    if (c.status === 'fulfilled') {
      connections = c.value?.connections || [];
      renderConnections();
    } else {
      replace(connectionStatus, describeError(c.reason, 'Could not load the carrier connections.'));
    }
    if (e.status === 'fulfilled') {
      extensions = (e.value?.extensions || []).sort((a, b) => String(a.number).localeCompare(String(b.number), undefined, { numeric: true }));
    }
    if (n.status === 'fulfilled') {
      numbers = n.value?.numbers || [];
      renderNumbers();
    } else {
      replace(numbersStatus, describeError(n.reason, 'Could not load the business numbers.'));
    }
  }

  // The Admin page loads (and reloads) this with its extensions.
  return {
    cards: [
      card('Business numbers', 'Numbers your organization texts from. Give each to the extensions that text from it; they share its conversations.', h('div', { class: 'table-wrap' }, numbersTable), numbersStatus, h('h3', { class: 'subhead' }, 'Add a number'), numberForm),
      card('Carrier connections', 'How texts reach the phone network. Each business number goes out through one connection.', connectionList, connectionStatus, h('h3', { class: 'subhead' }, 'Add a connection'), connectionForm),
    ],
    reload: load,
  };
}
