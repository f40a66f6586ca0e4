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
  Server, DEMO, NODES, launchBrowser, openUser, signIn, message, screenshot, assertNoBrowserErrors, allowFailedLoad,
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

/** The customer's phone: the simulator page with a phone number chosen. */
async function openPhone(number) {
  const phone = await openUser(browser, server, { label: 'phone', viewport: { width: 1280, height: 860 } });
  await phone.page.goto('/simulator');
  await phone.page.getByLabel('My phone number').fill(number);
  await phone.page.getByRole('button', { name: 'Use this number' }).click();
  await phone.page.locator('.phone-live-open').waitFor();
  return phone;
}

// The simulator keeps its phones in the memory of one node, and a text may
// leave through any node's outbox: with several nodes the phone would miss
// it (docs/DEPLOY.md). The texting paths across nodes are covered by the
// integration tests of several nodes (crates/server/tests/it/nodes.rs).
const SIMULATOR_NEEDS_ONE_NODE = NODES > 1 && 'the phone simulator lives on one node';

test('an extension texts a new number; the customer replies with a picture, live both ways', { timeout: 120_000, skip: SIMULATOR_NEEDS_ONE_NODE }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  await signIn(alice.page, DEMO.alice);
  // Bob has the same business number: the conversation is his too.
  const bob = await openUser(browser, server, { label: 'bob' });
  await signIn(bob.page, DEMO.bob);

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

  // Bob, who shares the number, got the conversation live, unread, with the red dot.
  const bobRow = bob.page.locator('.conversation-row', { hasText: '(201) 555-0147' });
  await bobRow.filter({ hasText: 'Great, is this the one?' }).waitFor();
  await bobRow.locator('.unread-count').waitFor();
  await bob.page.getByTestId('messages-dot').waitFor();
  await bobRow.click();
  await message(bob.page, 'Your order is ready 😀').locator('.msg-sender', { hasText: DEMO.alice.name }).waitFor();
  await screenshot(bob.page, 'sms', '05b-bob-shared-conversation');

  // Alice answers with a picture alone; the phone receives it.
  await alice.page.locator('.compose input[type="file"]').setInputFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: gradientPng(400, 300) });
  await alice.page.locator('.attach-tile[data-state="done"]').waitFor();
  await screenshot(alice.page, 'sms', '05c-attached');
  await box.press('Enter');
  await alice.page.locator('.msg.mine .attachment-ready img').waitFor();
  await phone.page.locator('.sim-msg.to-me .sim-media img').waitFor();
  await phone.page.waitForFunction(() => {
    const img = document.querySelector('.sim-msg.to-me .sim-media img');
    return img && img.complete && img.naturalWidth > 0;
  });
  await screenshot(phone.page, 'sms', '05d-phone-got-picture');

  // A STOP from the customer disables the composer, with the reason, before anyone types.
  await phone.page.getByTestId('sim-compose').fill('STOP');
  await phone.page.getByRole('button', { name: 'Send text' }).click();
  await alice.page.getByTestId('opted-out').filter({ hasText: 'This customer opted out of texts (STOP). They must text START before you can text them again.' }).waitFor();
  assert.equal(await box.isDisabled(), true);
  await screenshot(alice.page, 'sms', '06-opted-out');

  assertNoBrowserErrors(alice, bob, phone);
  await alice.context.close();
  await bob.context.close();
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
  // The demo gives Erin no business number, to show what that looks like.
  const erin = await openUser(browser, server, { label: 'erin' });
  await signIn(erin.page, DEMO.erin);
  await erin.page.getByRole('button', { name: 'New', exact: true }).click();
  const item = erin.page.getByRole('menuitem', { name: /SMS/ });
  await item.filter({ hasText: 'You have no SMS-enabled number. Ask an administrator to assign one.' }).waitFor();
  assert.equal(await item.getAttribute('aria-disabled'), 'true');
  await screenshot(erin.page, 'sms', '08-no-sms-number');
  // Choosing it anyway (Enter, as the keyboard does) opens nothing that would fail on send.
  await item.focus();
  await erin.page.keyboard.press('Enter');
  assert.equal(await erin.page.getByRole('dialog').count(), 0, 'no dialog that would fail on send');
  // The demo's phone simulator link is there for everyone in demo mode.
  await erin.page.getByRole('link', { name: /Phone simulator/ }).waitFor();
  assertNoBrowserErrors(erin);
  await erin.context.close();
});

test('an image over 10 MB is refused at once, and a file that is not an image with the server’s message', { timeout: 60_000 }, async () => {
  const carol = await openUser(browser, server, { label: 'carol' });
  allowFailedLoad(carol, 415);
  await signIn(carol.page, DEMO.carol);
  await carol.page.getByRole('button', { name: 'New', exact: true }).click();
  await carol.page.getByRole('menuitem', { name: /SMS/ }).click();
  const dialog = carol.page.getByRole('dialog', { name: 'New text message' });
  await dialog.getByRole('textbox', { name: 'To' }).fill('+1 201 555 0150');
  await dialog.getByRole('button', { name: 'Start texting' }).click();
  await carol.page.locator('.conversation-title', { hasText: '(201) 555-0150' }).waitFor();

  const picker = carol.page.locator('.compose input[type="file"]');
  const problem = carol.page.locator('.compose-error');
  let uploads = 0;
  carol.page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/api/v1/media') uploads += 1;
  });
  await picker.setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: Buffer.alloc(10 * 1024 * 1024 + 1) });
  await problem.filter({ hasText: '“huge.png” is 10.0 MB; images up to 10 MB can be sent.' }).waitFor();
  assert.equal(uploads, 0, 'an image over the limit is not uploaded');

  // A text file named like a picture: the server reads its content and refuses it.
  await picker.setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('these are my notes, not a picture\n') });
  await problem.filter({ hasText: '“notes.png” could not be attached:' }).waitFor();
  assert.equal(uploads, 1);
  assert.equal(await carol.page.locator('.attach-tile').count(), 0, 'nothing refused stays attached');
  assert.equal(await carol.page.getByRole('button', { name: 'Send message' }).isDisabled(), true);
  await screenshot(carol.page, 'sms', '10-attachment-refused');
  assertNoBrowserErrors(carol);
  await carol.context.close();
});

test('images are attached by dropping them on the conversation and by pasting', { timeout: 60_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  await signIn(alice.page, DEMO.alice);
  await alice.page.getByRole('button', { name: 'New', exact: true }).click();
  await alice.page.getByRole('menuitem', { name: /SMS/ }).click();
  const dialog = alice.page.getByRole('dialog', { name: 'New text message' });
  await dialog.getByRole('textbox', { name: 'To' }).fill('2015550151');
  await dialog.getByRole('button', { name: 'Start texting' }).click();
  await alice.page.locator('.conversation-title', { hasText: '(201) 555-0151' }).waitFor();

  const png = [...gradientPng(120, 90)];
  // A DataTransfer holding one PNG, as the browser makes for a drop or a paste.
  const transfer = (name) => alice.page.evaluateHandle(([bytes, fileName]) => {
    const data = new DataTransfer();
    data.items.add(new File([new Uint8Array(bytes)], fileName, { type: 'image/png' }));
    return data;
  }, [png, name]);

  const conversation = alice.page.locator('.conversation');
  const dropped = await transfer('dropped.png');
  await conversation.dispatchEvent('dragenter', { dataTransfer: dropped });
  await alice.page.locator('.conversation.dragging').waitFor();
  await screenshot(alice.page, 'sms', '11-dragging');
  await conversation.dispatchEvent('drop', { dataTransfer: dropped });
  await alice.page.locator('.attach-tile[data-state="done"]').first().waitFor();
  assert.equal(await alice.page.locator('.conversation.dragging').count(), 0);

  const pasted = await transfer('pasted.png');
  await alice.page.getByTestId('compose').evaluate((box, clipboardData) => {
    box.dispatchEvent(new ClipboardEvent('paste', { clipboardData, bubbles: true, cancelable: true }));
  }, pasted);
  await alice.page.locator('.attach-tile[data-state="done"]').nth(1).waitFor();
  await alice.page.getByRole('button', { name: 'Remove dropped.png' }).waitFor();
  await alice.page.getByRole('button', { name: 'Remove pasted.png' }).click();
  assert.equal(await alice.page.locator('.attach-tile').count(), 1);

  await alice.page.getByTestId('compose').fill('Two views');
  await alice.page.getByTestId('compose').press('Enter');
  const sent = message(alice.page, 'Two views');
  await sent.locator('.attachment-ready img').waitFor();
  assert.equal(await sent.locator('.attachment').count(), 1, 'the removed image is not sent');
  assertNoBrowserErrors(alice);
  await alice.context.close();
});

test('the phone simulator works from the keyboard alone', { timeout: 60_000 }, async () => {
  const phone = await openUser(browser, server, { label: 'phone' });
  const page = phone.page;
  await page.goto('/simulator');
  await page.getByLabel('My phone number').focus();
  await page.keyboard.type('+1 201 555 0170');
  await page.keyboard.press('Enter');
  await page.locator('.phone-live-open').waitFor();
  await page.getByText('No texts yet. Pick a business number and say hello.').waitFor();

  // The business number picker, then Enter: the thread opens with the text box focused.
  await page.getByRole('combobox', { name: 'Text a business number' }).focus();
  await page.keyboard.press('Enter');
  const box = page.getByTestId('sim-compose');
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'sim-compose');
  await page.keyboard.type('Hello from the keyboard');
  await page.keyboard.press('Enter');
  await page.locator('.sim-msg.from-me:not(.pending)', { hasText: 'Hello from the keyboard' }).waitFor();
  assert.equal(await box.inputValue(), '');

  // Escape goes back to the list, onto the thread just left.
  await page.keyboard.press('Escape');
  const row = page.locator('.thread-row', { hasText: 'Hello from the keyboard' });
  await row.waitFor();
  assert.equal(await row.evaluate((el) => el === document.activeElement), true);
  await screenshot(page, 'sms', '12-phone-keyboard');
  assertNoBrowserErrors(phone);
  await phone.context.close();
});
