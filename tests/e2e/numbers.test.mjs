// Phone numbers and carriers: an administrator adds a Twilio connection and
// copies its webhook URLs, adds business numbers (one typed in local form),
// turns texting on and assigns them; the extension picks its default number
// for new texts in Settings, and one without a number is told why.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, DEMO, launchBrowser, openUser, signIn, screenshot, assertNoBrowserErrors, allowFailedLoad,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start('numbers');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function openAdmin(page) {
  await page.getByRole('link', { name: /Admin/ }).click();
  await page.getByRole('heading', { name: 'Phone numbers & carriers' }).waitFor();
}

/** The row of the numbers table for a number in E.164 form. */
const row = (page, e164) => page.locator(`tr[data-number="${e164}"]`);

test('an administrator sets up Twilio and numbers; an extension picks its default', { timeout: 120_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  await alice.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await signIn(alice.page, DEMO.alice);
  await openAdmin(alice.page);
  const page = alice.page;
  await page.getByText('No business numbers yet — add one to let extensions text customers.').waitFor();
  await page.getByText(/^No carrier connections yet/).waitFor();
  await page.getByRole('heading', { name: 'Phone numbers & carriers' }).scrollIntoViewIfNeeded();
  await screenshot(page, 'numbers', '01-empty');

  // A Telnyx connection needs its public key: the API's message shows inline.
  await page.getByText('Add a carrier connection').click();
  const form = page.getByRole('form', { name: 'Add carrier connection' });
  await form.getByLabel('Kind').selectOption('telnyx');
  assert.equal(await form.getByLabel('Account SID').isVisible(), false, 'Twilio fields are hidden for Telnyx');
  await form.getByLabel('Name', { exact: true }).fill('Telnyx main');
  await form.getByLabel('API key', { exact: true }).fill('KEY0123456789ABCDEF');
  allowFailedLoad(alice, 422);
  await form.getByRole('button', { name: 'Add connection' }).click();
  await form.getByRole('alert').filter({ hasText: /public_key: is required/ }).waitFor();
  await form.scrollIntoViewIfNeeded();
  await screenshot(page, 'numbers', '02-telnyx-refused');

  // Twilio: its two webhook URLs are shown, under the server's public URL.
  await form.getByLabel('Kind').selectOption('twilio');
  assert.equal(await form.getByLabel('Public key').isVisible(), false, 'Telnyx fields are hidden for Twilio');
  await form.getByLabel('Name', { exact: true }).fill('Main Twilio');
  await form.getByLabel('Account SID').fill('AC0123456789abcdef0123456789abcdef');
  await form.getByLabel('Auth token').fill('f3a9c1d2e4b5a6978877665544332211');
  await form.getByRole('button', { name: 'Add connection' }).click();
  const connection = page.locator('.connection', { hasText: 'Main Twilio' });
  await connection.waitFor();
  const messagesUrl = connection.getByRole('textbox', { name: 'Incoming messages URL' });
  const statusUrl = connection.getByRole('textbox', { name: 'Delivery status URL' });
  const id = await connection.getAttribute('data-connection');
  assert.equal(await messagesUrl.inputValue(), `${server.apiUrl}/webhooks/twilio/${id}/messages`);
  assert.equal(await statusUrl.inputValue(), `${server.apiUrl}/webhooks/twilio/${id}/status`);
  await connection.getByText('…2211').waitFor();
  assert.equal(await connection.getByText('f3a9c1d2e4b5a6978877665544332211').count(), 0, 'the auth token is never shown');
  await connection.getByRole('button', { name: 'Copy the delivery status URL of Main Twilio' }).click();
  await connection.getByText('Delivery status URL copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${server.apiUrl}/webhooks/twilio/${id}/status`);
  await connection.scrollIntoViewIfNeeded();
  await screenshot(page, 'numbers', '03-twilio-webhooks');

  // A number that cannot be valid is refused with the API's explanation.
  const numberForm = page.getByRole('form', { name: 'Add business number' });
  await numberForm.getByLabel('Phone number').fill('555');
  await numberForm.getByRole('button', { name: 'Add number' }).click();
  await numberForm.getByRole('alert').filter({ hasText: 'is not a valid phone number' }).waitFor();

  // One number already texting, one typed locally with texting off.
  await numberForm.getByLabel('Phone number').fill('+1 415 555 0199');
  assert.equal(await numberForm.getByLabel('Carrier').inputValue(), id, 'the only connection is chosen');
  await numberForm.getByRole('button', { name: 'Add number' }).click();
  await row(page, '+14155550199').waitFor();
  await numberForm.getByLabel('Phone number').fill('(415) 555-0142');
  await numberForm.getByLabel('Sends and receives texts').uncheck();
  await numberForm.getByRole('button', { name: 'Add number' }).click();
  const local = row(page, '+14155550142');
  await local.waitFor();
  assert.equal((await local.locator('.number-display').textContent()).trim(), '(415) 555-0142');
  const sms = page.getByRole('switch', { name: 'SMS for (415) 555-0142' });
  assert.equal(await sms.isChecked(), false);

  // Bob texts from the first number, then from the local one once it texts.
  const assign = async (display, who) => {
    const escaped = display.replace(/[()+]/g, '\\$&');
    await page.getByLabel(new RegExp(`^Extensions that text from ${escaped}: `)).click();
    const box = page.getByRole('group', { name: `Extensions that text from ${display}` }).getByLabel(`${who.number} ${who.name}`);
    await box.check();
    await page.getByLabel(new RegExp(`^Extensions that text from ${escaped}: .*${who.name}`)).waitFor();
  };
  await assign('(415) 555-0199', DEMO.bob);
  await sms.check();
  await page.waitForFunction(() => {
    const input = document.querySelector('tr[data-number="+14155550142"] input[role="switch"]');
    return input && input.checked && !input.disabled;
  });
  await assign('(415) 555-0142', DEMO.bob);
  await page.getByRole('table', { name: 'Business numbers' }).scrollIntoViewIfNeeded();
  await screenshot(page, 'numbers', '04-numbers-assigned');

  // Reloaded, the page shows what was saved.
  await page.reload();
  await page.getByRole('heading', { name: 'Phone numbers & carriers' }).waitFor();
  await page.getByRole('switch', { name: 'SMS for (415) 555-0142' }).waitFor();
  assert.equal(await page.getByRole('switch', { name: 'SMS for (415) 555-0142' }).isChecked(), true);
  await page.getByLabel(/^Extensions that text from \(415\) 555-0142: 102 Bob Baker$/).waitFor();

  // Bob picks the local number as his default.
  const bob = await openUser(browser, server, { label: 'bob' });
  await signIn(bob.page, DEMO.bob);
  await bob.page.getByRole('link', { name: /Settings/ }).click();
  const select = bob.page.getByLabel('Default number for new texts');
  await select.waitFor();
  const options = await select.locator('option').allTextContents();
  assert.deepEqual(options, ['(415) 555-0142', '(415) 555-0199']);
  assert.equal(await select.inputValue(), await select.locator('option', { hasText: '(415) 555-0199' }).getAttribute('value'), 'the first number assigned is the default');
  await select.selectOption({ label: '(415) 555-0142' });
  await bob.page.getByText('New texts go out from (415) 555-0142.').waitFor();
  await screenshot(bob.page, 'numbers', '05-default-picked');
  await bob.page.reload();
  await bob.page.getByLabel('Default number for new texts').waitFor();
  const chosen = await bob.page.getByLabel('Default number for new texts').inputValue();
  assert.equal(await bob.page.locator(`option[value="${chosen}"]`).textContent(), '(415) 555-0142', 'the choice is kept');

  // Carol has no number and is told why.
  const carol = await openUser(browser, server, { label: 'carol' });
  await signIn(carol.page, DEMO.carol);
  await carol.page.getByRole('link', { name: /Settings/ }).click();
  await carol.page.getByText('You have no SMS-enabled number. Ask an administrator to assign one.').waitFor();
  assert.equal(await carol.page.getByLabel('Default number for new texts').count(), 0);
  await screenshot(carol.page, 'numbers', '06-no-number');

  assertNoBrowserErrors(alice, bob, carol);
  await alice.context.close();
  await bob.context.close();
  await carol.context.close();
});

test('the organization country changes how numbers are read and shown', { timeout: 60_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice-country' });
  await signIn(alice.page, DEMO.alice);
  await openAdmin(alice.page);
  const page = alice.page;
  const numberForm = page.getByRole('form', { name: 'Add business number' });
  await numberForm.getByText('As dialled in United States, or with + and the country code.').waitFor();
  await numberForm.getByLabel('Phone number').fill('415 555 0177');
  await numberForm.getByRole('button', { name: 'Add number' }).click();
  await row(page, '+14155550177').locator('.number-display', { hasText: '(415) 555-0177' }).waitFor();

  const country = page.getByLabel('Default country for phone numbers');
  await country.waitFor();
  assert.equal(await country.inputValue(), 'US');
  assert.equal(await country.locator('option[value="GB"]').textContent(), 'United Kingdom');
  await country.selectOption('GB');
  await page.getByRole('button', { name: 'Save country' }).click();
  await page.getByText('Saved: United Kingdom.').waitFor();
  await numberForm.getByText('As dialled in United Kingdom, or with + and the country code.').waitFor();
  await numberForm.getByLabel('Phone number').fill('020 7946 0958');
  await numberForm.getByRole('button', { name: 'Add number' }).click();
  await row(page, '+442079460958').waitFor();
  await row(page, '+442079460958').locator('.number-display', { hasText: '020 7946 0958' }).waitFor();
  await row(page, '+14155550177').locator('.number-display', { hasText: '+1 415-555-0177' }).waitFor();
  await page.getByRole('table', { name: 'Business numbers' }).scrollIntoViewIfNeeded();
  await screenshot(page, 'numbers', '07-country-gb');
  assertNoBrowserErrors(alice);
  await alice.context.close();
});

test('at phone width the numbers and carriers fit the screen', { timeout: 60_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice-phone', viewport: { width: 390, height: 844 } });
  await signIn(alice.page, DEMO.alice);
  await openAdmin(alice.page);
  const page = alice.page;
  const table = page.getByRole('table', { name: 'Business numbers' });
  await row(page, '+14155550142').waitFor();
  await table.scrollIntoViewIfNeeded();
  await screenshot(page, 'numbers', '08-phone-numbers');
  const overflow = await page.evaluate(() => {
    const wrap = document.querySelector('.numbers-table').closest('.table-wrap');
    return wrap.scrollWidth - wrap.clientWidth;
  });
  assert.ok(overflow <= 1, `the numbers table fits the screen (overflow ${overflow}px)`);
  await page.locator('.connection', { hasText: 'Main Twilio' }).scrollIntoViewIfNeeded();
  await screenshot(page, 'numbers', '09-phone-connection');
  assertNoBrowserErrors(alice);
  await alice.context.close();
});
