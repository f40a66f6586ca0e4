// Texting customers: an extension starts an SMS from the portal, the
// customer (the phone simulator page, in another browser context) receives
// it and replies with a picture; the reply and its image appear live, the
// delivery status reaches "Delivered", the segment counter tells GSM-7 from
// UCS-2, a STOP from the customer disables the composer, and an extension
// without an SMS-enabled number is told why it cannot text.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import {
  Server, DEMO, DEMO_PASSWORD, launchBrowser, openUser, signIn, message, screenshot, assertNoBrowserErrors, allowFailedLoad,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start('sms');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A small RGB PNG with a diagonal gradient, made here so the test needs no fixture file. */
function gradientPng(width, height) {
  const table = new Int32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  const crc = (bytes) => {
    let c = -1;
    for (const b of bytes) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x += 1) {
      rows[row + 1 + x * 3] = Math.round((255 * x) / width);
      rows[row + 2 + x * 3] = Math.round((200 * y) / height);
      rows[row + 3 + x * 3] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function csrfOf(user) {
  const cookies = await user.context.cookies();
  return cookies.find((c) => c.name === 'sb_csrf')?.value;
}

/** The customer's phone: the simulator page with a phone number chosen. */
async function openPhone(number) {
  const phone = await openUser(browser, server, { label: 'phone', viewport: { width: 1280, height: 860 } });
  await phone.page.goto('/simulator');
  await phone.page.getByLabel('My phone number').fill(number);
  await phone.page.getByRole('button', { name: 'Use this number' }).click();
  await phone.page.locator('.phone-live-open').waitFor();
  return phone;
}

test('an extension texts a new number; the customer replies with a picture, live both ways', { timeout: 120_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  await signIn(alice.page, DEMO.alice);

  // Demo mode: the portal links to the phone simulator, in a new tab.
  const simulatorLink = alice.page.getByRole('link', { name: /Phone simulator/ });
  assert.equal(await simulatorLink.getAttribute('href'), '/simulator');
  assert.equal(await simulatorLink.getAttribute('target'), '_blank');

  const phone = await openPhone('(201) 555-0147');
  await phone.page.getByText('No texts yet. Pick a business number and say hello.').waitFor();
  await screenshot(phone.page, 'sms', '01-phone-empty');

  // + New → SMS, with the number typed in local form.
  await alice.page.getByRole('button', { name: 'New', exact: true }).click();
  await alice.page.getByRole('menuitem', { name: /SMS/ }).click();
  const dialog = alice.page.getByRole('dialog', { name: 'New text message' });
  await dialog.getByRole('textbox', { name: 'To' }).fill('(201) 555-0147');
  await screenshot(alice.page, 'sms', '02-new-sms-dialog');
  await dialog.getByRole('button', { name: 'Start texting' }).click();
  await dialog.waitFor({ state: 'detached' });
  await alice.page.locator('.conversation-title', { hasText: '(201) 555-0147' }).waitFor();
  const via = await alice.page.locator('.conversation-subtitle').textContent();
  assert.match(via, /^via \(\d{3}\) \d{3}-\d{4}$/, 'the header names the business number the texts go out from');
  const row = alice.page.locator('.conversation-row', { hasText: '(201) 555-0147' });
  await row.locator('.badge', { hasText: 'SMS' }).waitFor();

  // The segment counter comes from the server and tells GSM-7 from UCS-2.
  const box = alice.page.getByTestId('compose');
  const counter = alice.page.getByTestId('segments');
  await box.fill('Your order is ready');
  await counter.filter({ hasText: '19 characters · 1 segment · GSM-7' }).waitFor();
  await box.press('End');
  await box.pressSequentially(' 😀');
  await counter.filter({ hasText: '21 characters · 1 segment · UCS-2 because of “😀”' }).waitFor();
  await screenshot(alice.page, 'sms', '03-segments-ucs2');
  await box.press('Enter');

  // The customer's phone gets the text live, in the thread of that business number.
  const first = message(alice.page, 'Your order is ready 😀');
  await first.waitFor();
  await phone.page.locator('.thread-row', { hasText: 'Your order is ready 😀' }).click();
  await phone.page.locator('.sim-msg.to-me', { hasText: 'Your order is ready 😀' }).waitFor();

  // The simulator's receipt moves the status under the message to Delivered.
  await first.getByTestId('delivery').filter({ hasText: 'Delivered' }).waitFor();

  // The customer replies with a picture.
  await phone.page.getByTestId('sim-file').setInputFiles({ name: 'bike.png', mimeType: 'image/png', buffer: gradientPng(320, 240) });
  await phone.page.locator('.sim-tray .attach-tile[data-state="done"]').waitFor();
  await phone.page.getByTestId('sim-compose').fill('Great, is this the one?');
  await phone.page.getByRole('button', { name: 'Send text' }).click();
  await phone.page.locator('.sim-msg.from-me:not(.pending)', { hasText: 'Great, is this the one?' }).waitFor();
  await screenshot(phone.page, 'sms', '04-phone-thread');

  // The reply appears live in the portal: the customer's number, the text, and the image once fetched.
  const reply = message(alice.page, 'Great, is this the one?');
  await reply.waitFor();
  await reply.locator('.attachment-ready img').waitFor();
  await alice.page.waitForFunction(() => {
    const img = [...document.querySelectorAll('.msg.theirs .attachment-ready img')].pop();
    return img && img.complete && img.naturalWidth > 0;
  });
  assert.equal(await reply.locator('.msg-sender').textContent(), '(201) 555-0147');
  const href = await reply.locator('.attachment-ready').getAttribute('href');
  assert.match(href, /^\/api\/v1\/media\//);
  assert.equal(await reply.locator('.attachment-ready').getAttribute('target'), '_blank');
  assert.equal(await first.getByTestId('delivery').textContent(), 'Delivered', 'the status under the first text stays Delivered');
  await screenshot(alice.page, 'sms', '05-portal-reply-with-image');

  // A STOP from the customer disables the composer, with the reason, before anyone types.
  await phone.page.getByTestId('sim-compose').fill('STOP');
  await phone.page.getByRole('button', { name: 'Send text' }).click();
  await alice.page.getByTestId('opted-out').filter({ hasText: 'This customer opted out of texts (STOP). They must text START before you can text them again.' }).waitFor();
  assert.equal(await box.isDisabled(), true);
  await screenshot(alice.page, 'sms', '06-opted-out');

  assertNoBrowserErrors(alice, phone);
  await alice.context.close();
  await phone.context.close();
});

test('a number that cannot be valid is refused in the dialog with the server’s message', { timeout: 60_000 }, async () => {
  const bob = await openUser(browser, server, { label: 'bob' });
  allowFailedLoad(bob, 422);
  await signIn(bob.page, DEMO.bob);
  await bob.page.getByRole('button', { name: 'New', exact: true }).click();
  await bob.page.getByRole('menuitem', { name: /SMS/ }).click();
  const dialog = bob.page.getByRole('dialog', { name: 'New text message' });
  const to = dialog.getByRole('textbox', { name: 'To' });
  await to.fill('12');
  await dialog.getByRole('button', { name: 'Start texting' }).click();
  const error = dialog.locator('.field-error');
  await error.waitFor();
  assert.ok((await error.textContent()).length > 5, 'the server’s message is shown');
  assert.equal(await to.getAttribute('aria-invalid'), 'true');
  await screenshot(bob.page, 'sms', '07-invalid-number');
  assertNoBrowserErrors(bob);
  await bob.context.close();
});

test('an extension without an SMS-enabled number is told why it cannot text', { timeout: 60_000 }, async () => {
  // A new extension has no business number.
  const alice = await openUser(browser, server, { label: 'alice' });
  await signIn(alice.page, DEMO.alice);
  const created = await alice.context.request.post('/api/v1/admin/extensions', {
    headers: { 'X-CSRF-Token': await csrfOf(alice) },
    data: { number: '180', name: 'Nora Number', password: DEMO_PASSWORD, role: 'member' },
  });
  assert.equal(created.status(), 201);
  await alice.context.close();

  const nora = await openUser(browser, server, { label: 'nora' });
  await signIn(nora.page, '180');
  await nora.page.getByRole('button', { name: 'New', exact: true }).click();
  const item = nora.page.getByRole('menuitem', { name: /SMS/ });
  await item.filter({ hasText: 'You have no SMS-enabled number. Ask an administrator to assign one.' }).waitFor();
  assert.equal(await item.getAttribute('aria-disabled'), 'true');
  await screenshot(nora.page, 'sms', '08-no-sms-number');
  await item.click();
  assert.equal(await nora.page.getByRole('dialog').count(), 0, 'no dialog that would fail on send');
  // The demo's phone simulator link is there for everyone in demo mode.
  await nora.page.getByRole('link', { name: /Phone simulator/ }).waitFor();
  assertNoBrowserErrors(nora);
  await nora.context.close();
});

test('an administrator adds a carrier connection and a number and gives it to an extension, which can then text', { timeout: 90_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  await signIn(alice.page, DEMO.alice);
  const created = await alice.context.request.post('/api/v1/admin/extensions', {
    headers: { 'X-CSRF-Token': await csrfOf(alice) },
    data: { number: '181', name: 'Omar Owens', password: DEMO_PASSWORD, role: 'member' },
  });
  assert.equal(created.status(), 201);

  const omar = await openUser(browser, server, { label: 'omar' });
  await signIn(omar.page, '181');
  await omar.page.getByRole('button', { name: 'New', exact: true }).click();
  await omar.page.getByRole('menuitem', { name: /SMS/ }).filter({ hasText: 'You have no SMS-enabled number' }).waitFor();
  await omar.page.keyboard.press('Escape');

  // Admin page: a new simulator connection, then a number served by it.
  await alice.page.goto('/#/admin');
  const connections = alice.page.getByRole('form', { name: 'New carrier connection' });
  await connections.getByLabel('Kind').selectOption('simulator');
  await connections.getByLabel('Name').fill('Second simulator');
  await connections.getByRole('button', { name: 'Add connection' }).click();
  await alice.page.locator('.connection', { hasText: 'Second simulator' }).waitFor();

  const numbers = alice.page.getByRole('form', { name: 'New business number' });
  await numbers.getByLabel('Number', { exact: true }).fill('(201) 555-0190');
  await numbers.getByLabel('Carrier connection').selectOption({ label: 'Second simulator (Simulator)' });
  await numbers.getByRole('button', { name: 'Add number' }).click();
  const row = alice.page.locator('.numbers-table tr', { hasText: '(201) 555-0190' });
  await row.waitFor();
  await row.getByRole('combobox', { name: /Give \(201\) 555-0190 to an extension/ }).selectOption({ label: '181 Omar Owens' });
  await row.locator('.chip', { hasText: '181 Omar Owens' }).waitFor();
  await row.scrollIntoViewIfNeeded();
  await screenshot(alice.page, 'sms', '09-admin-numbers');

  // Omar can now text from it: the New menu asks the server again when it opens.
  await omar.page.getByRole('button', { name: 'New', exact: true }).click();
  await omar.page.getByRole('menuitem', { name: /SMS/ }).filter({ hasText: 'Text a customer’s phone' }).click();
  const dialog = omar.page.getByRole('dialog', { name: 'New text message' });
  await dialog.getByText('From your number (201) 555-0190').waitFor();
  await dialog.getByRole('textbox', { name: 'To' }).fill('201-555-0148');
  await dialog.getByRole('button', { name: 'Start texting' }).click();
  await omar.page.locator('.conversation-subtitle', { hasText: 'via (201) 555-0190' }).waitFor();

  assertNoBrowserErrors(alice, omar);
  await alice.context.close();
  await omar.context.close();
});
