// Direct chat between colleagues: live both ways, unread counts and the red
// dot, read receipts, the typing indicator, and text that looks like HTML.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, DEMO, launchBrowser, openUser, signIn, startChat, openConversation, sendMessage,
  message, waitForMessage, unreadIn, screenshot, assertNoBrowserErrors, allowFailedLoad,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start('chat');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('two colleagues chat live both ways', { timeout: 90_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const bob = await openUser(browser, server, { label: 'bob' });
  await signIn(alice.page, DEMO.alice);
  await signIn(bob.page, DEMO.bob);
  await alice.page.getByText('No conversations yet').first().waitFor();
  await screenshot(alice.page, 'chat', '01-empty-inbox');

  await startChat(alice.page, DEMO.bob.name);
  await screenshot(alice.page, 'chat', '02-new-chat-open');
  await sendMessage(alice.page, 'Hi Bob, lunch at noon?');
  await message(alice.page, 'Hi Bob, lunch at noon?').locator('.msg-status', { hasText: 'Sent' }).waitFor();

  // Bob's sidebar gets the new conversation live, with its preview.
  const row = bob.page.locator('.conversation-row', { hasText: DEMO.alice.name });
  await row.filter({ hasText: 'Hi Bob, lunch at noon?' }).waitFor();
  await openConversation(bob.page, DEMO.alice.name);
  await waitForMessage(bob.page, 'Hi Bob, lunch at noon?');

  await sendMessage(bob.page, 'Sounds good!');
  await waitForMessage(alice.page, 'Sounds good!');

  // Shift+Enter makes a new line; Enter sends.
  const box = bob.page.getByTestId('compose');
  await box.click();
  await bob.page.keyboard.type('First line');
  await bob.page.keyboard.press('Shift+Enter');
  await bob.page.keyboard.type('second line');
  await bob.page.keyboard.press('Enter');
  await waitForMessage(alice.page, 'second line');
  const text = await message(alice.page, 'second line').locator('.msg-text').textContent();
  assert.equal(text, 'First line\nsecond line');
  assert.equal(await box.inputValue(), '');

  // Every message shows once on each side (optimistic copy reconciled).
  for (const page of [alice.page, bob.page]) {
    for (const t of ['Hi Bob, lunch at noon?', 'Sounds good!', 'second line']) {
      assert.equal(await message(page, t).count(), 1, `"${t}" shown once`);
    }
  }
  await screenshot(alice.page, 'chat', '03-alice-conversation');
  await screenshot(bob.page, 'chat', '04-bob-conversation');

  // + New → Chat with the same colleague opens the existing chat.
  const url = alice.page.url();
  await alice.page.goto('/#/messages');
  await startChat(alice.page, DEMO.bob.name);
  assert.equal(alice.page.url(), url);
  assert.equal(await alice.page.locator('.conversation-row').count(), 1);

  assertNoBrowserErrors(alice, bob);
  await alice.context.close();
  await bob.context.close();
});

test('unread count and red dot appear, and clear when the conversation is opened', { timeout: 90_000 }, async () => {
  const carol = await openUser(browser, server, { label: 'carol' });
  const dan = await openUser(browser, server, { label: 'dan' });
  await signIn(carol.page, DEMO.carol);
  await signIn(dan.page, DEMO.dan);
  await dan.page.getByRole('link', { name: /Settings/ }).click();
  await dan.page.getByRole('heading', { name: 'Settings' }).waitFor();

  await startChat(carol.page, DEMO.dan.name);
  await sendMessage(carol.page, 'Are you at your desk?');
  await sendMessage(carol.page, 'Need a hand with the Acme order.');
  await message(carol.page, 'Need a hand with the Acme order.').locator('.msg-status', { hasText: 'Sent' }).waitFor();

  // Dan is elsewhere (Settings): the red dot and the title tell him.
  const dot = dan.page.getByTestId('messages-dot');
  await dot.waitFor();
  await dan.page.waitForFunction(() => document.title === '(2) Switchboard');
  await screenshot(dan.page, 'unread', '01-red-dot-on-settings');

  await dan.page.getByRole('link', { name: /Messages/ }).click();
  const row = dan.page.locator('.conversation-row', { hasText: DEMO.carol.name });
  await row.locator('.unread-count', { hasText: '2' }).waitFor();
  assert.equal(await unreadIn(dan.page, DEMO.carol.name), 2);
  await screenshot(dan.page, 'unread', '02-sidebar-unread');

  await openConversation(dan.page, DEMO.carol.name);
  await waitForMessage(dan.page, 'Need a hand with the Acme order.');
  await row.locator('.unread-count').waitFor({ state: 'detached' });
  await dot.waitFor({ state: 'hidden' });
  await dan.page.waitForFunction(() => document.title === 'Switchboard');

  // A message arriving while Dan is looking at the conversation stays read.
  await sendMessage(carol.page, 'Thanks!');
  await waitForMessage(dan.page, 'Thanks!');
  assert.equal(await unreadIn(dan.page, DEMO.carol.name), 0);
  assert.ok(await dot.isHidden());
  await screenshot(dan.page, 'unread', '03-read');

  assertNoBrowserErrors(carol, dan);
  await carol.context.close();
  await dan.context.close();
});

test('a read receipt with the reader’s name appears under my message', { timeout: 90_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const carol = await openUser(browser, server, { label: 'carol' });
  await signIn(alice.page, DEMO.alice);
  await signIn(carol.page, DEMO.carol);

  await startChat(alice.page, DEMO.carol.name);
  await sendMessage(alice.page, 'Did you see the quarterly report?');
  const mine = message(alice.page, 'Did you see the quarterly report?');
  await mine.locator('.msg-status', { hasText: 'Sent' }).waitFor();

  await openConversation(carol.page, DEMO.alice.name);
  await waitForMessage(carol.page, 'Did you see the quarterly report?');

  await mine.locator('.msg-status', { hasText: `Read by ${DEMO.carol.name}` }).waitFor();
  await screenshot(alice.page, 'receipts', '01-read-by-carol');

  // After a reload the receipt comes from GET …/receipts.
  await alice.page.reload();
  await waitForMessage(alice.page, 'Did you see the quarterly report?');
  await message(alice.page, 'Did you see the quarterly report?').locator('.msg-status', { hasText: `Read by ${DEMO.carol.name}` }).waitFor();

  assertNoBrowserErrors(alice, carol);
  await alice.context.close();
  await carol.context.close();
});

test('the typing indicator shows while a colleague types and goes away when they stop or send', { timeout: 90_000 }, async () => {
  const bob = await openUser(browser, server, { label: 'bob' });
  const erin = await openUser(browser, server, { label: 'erin' });
  await signIn(bob.page, DEMO.bob);
  await signIn(erin.page, DEMO.erin);

  await startChat(bob.page, DEMO.erin.name);
  await sendMessage(bob.page, 'Quick question');
  await openConversation(erin.page, DEMO.bob.name);
  await waitForMessage(erin.page, 'Quick question');

  const indicator = erin.page.getByTestId('typing').filter({ hasText: 'Bob is typing' });
  await bob.page.getByTestId('compose').click();
  await bob.page.keyboard.type('about the invoice', { delay: 40 });
  await indicator.waitFor();
  await screenshot(erin.page, 'typing', '01-bob-is-typing');

  // Bob stops typing: the indicator goes a few seconds later.
  await indicator.waitFor({ state: 'detached', timeout: 10_000 });
  await screenshot(erin.page, 'typing', '02-stopped');

  // Bob types again and sends: the indicator goes at once.
  await bob.page.keyboard.type(' from March', { delay: 40 });
  await indicator.waitFor();
  await bob.page.keyboard.press('Enter');
  await waitForMessage(erin.page, 'about the invoice from March');
  await indicator.waitFor({ state: 'detached', timeout: 2_000 });

  assertNoBrowserErrors(bob, erin);
  await bob.context.close();
  await erin.context.close();
});

test('a message that looks like HTML shows as text, links are safe', { timeout: 90_000 }, async () => {
  const dan = await openUser(browser, server, { label: 'dan' });
  const erin = await openUser(browser, server, { label: 'erin' });
  await signIn(dan.page, DEMO.dan);
  await signIn(erin.page, DEMO.erin);

  const evil = '<img src=x onerror=alert(1)>';
  await startChat(dan.page, DEMO.erin.name);
  await sendMessage(dan.page, evil);
  await sendMessage(dan.page, 'Docs: https://example.com/guide?x=1, not javascript:alert(2)');
  await openConversation(erin.page, DEMO.dan.name);

  for (const page of [dan.page, erin.page]) {
    const bubble = message(page, 'onerror').locator('.msg-text');
    await bubble.waitFor();
    assert.equal(await bubble.textContent(), evil);
    assert.equal(await page.locator('.log img').count(), 0);
    const link = message(page, 'Docs:').locator('a');
    await link.waitFor();
    assert.equal(await link.count(), 1);
    assert.equal(await link.getAttribute('href'), 'https://example.com/guide?x=1');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await link.getAttribute('target'), '_blank');
  }
  // The sidebar preview is text too.
  await dan.page.locator('.conversation-row .row-preview', { hasText: 'Docs:' }).waitFor();
  await screenshot(erin.page, 'xss', '01-html-as-text');

  assertNoBrowserErrors(dan, erin);
  await dan.context.close();
  await erin.context.close();
});

test('a failed send stays visible with Retry, which reuses its idempotency key; drafts survive a reload', { timeout: 90_000 }, async () => {
  const carol = await openUser(browser, server, { label: 'carol' });
  const erin = await openUser(browser, server, { label: 'erin' });
  await signIn(carol.page, DEMO.carol);
  await signIn(erin.page, DEMO.erin);
  await startChat(carol.page, DEMO.erin.name);
  await openConversation(erin.page, DEMO.carol.name);
  allowFailedLoad(carol, 503);
  const unavailable = { status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'Service unavailable' } }) };
  const route = '**/api/v1/conversations/*/messages';

  // The server stores the message but its answer is lost on the way back:
  // the live frame confirms it, and it shows once.
  await carol.page.route(route, async (r) => {
    if (r.request().method() !== 'POST') return r.fallback();
    await r.fetch();
    await r.fulfill(unavailable);
  });
  await sendMessage(carol.page, 'Stored, answer lost');
  await message(carol.page, 'Stored, answer lost').locator('.msg-status', { hasText: /Sent|Read by/ }).waitFor();
  await waitForMessage(erin.page, 'Stored, answer lost');
  await carol.page.unroute(route);

  // The server is unavailable: the message stays, marked, with Retry.
  const keys = [];
  await carol.page.route(route, async (r) => {
    if (r.request().method() !== 'POST') return r.fallback();
    keys.push(r.request().postDataJSON().idempotency_key);
    await r.fulfill(unavailable);
  });
  await sendMessage(carol.page, 'Did this arrive?');
  const mine = message(carol.page, 'Did this arrive?');
  await mine.getByRole('button', { name: 'Retry' }).waitFor();
  await screenshot(carol.page, 'retry', '01-failed-send');
  await carol.page.unroute(route);
  await carol.page.route(route, async (r) => {
    if (r.request().method() === 'POST') keys.push(r.request().postDataJSON().idempotency_key);
    await r.fallback();
  });

  await mine.getByRole('button', { name: 'Retry' }).click();
  await mine.locator('.msg-status', { hasText: /Sent|Read by/ }).waitFor();
  await waitForMessage(erin.page, 'Did this arrive?');
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], 'Retry reuses the idempotency key');
  for (const page of [carol.page, erin.page]) {
    assert.equal(await message(page, 'Stored, answer lost').count(), 1);
    assert.equal(await message(page, 'Did this arrive?').count(), 1);
  }

  // A draft is kept per conversation, across a reload.
  await carol.page.getByTestId('compose').fill('Half-written thought');
  await carol.page.reload();
  await waitForMessage(carol.page, 'Did this arrive?');
  assert.equal(await carol.page.getByTestId('compose').inputValue(), 'Half-written thought');
  assert.equal(await message(carol.page, 'Did this arrive?').count(), 1);

  assertNoBrowserErrors(carol, erin);
  await carol.context.close();
  await erin.context.close();
});

test('older history loads on scrolling up, in order, nothing twice', { timeout: 90_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const dan = await openUser(browser, server, { label: 'dan' });
  await signIn(alice.page, DEMO.alice);
  await signIn(dan.page, DEMO.dan);
  await startChat(alice.page, DEMO.dan.name);
  const id = Number(new URL(alice.page.url()).hash.split('/').pop());

  // 120 messages through the API, as another device of Alice's would send them.
  const csrf = (await alice.context.cookies()).find((c) => c.name === 'sb_csrf').value;
  const total = 120;
  for (let i = 1; i <= total; i += 1) {
    const answer = await alice.context.request.post(`/api/v1/conversations/${id}/messages`, {
      headers: { 'X-CSRF-Token': csrf },
      data: { text: `History line ${i}`, idempotency_key: `history-${id}-${i}` },
    });
    assert.equal(answer.status(), 201);
  }

  await openConversation(dan.page, DEMO.alice.name);
  await waitForMessage(dan.page, `History line ${total}`);
  const log = dan.page.getByTestId('message-log');
  const texts = () => log.locator('.msg-text').allTextContents();
  const first = (await texts()).length;
  assert.ok(first < total, `the first page is partial (${first})`);

  // Scroll to the top until the beginning of the conversation shows.
  for (let round = 0; round < 10; round += 1) {
    if (await log.getByText('This is the beginning of the conversation.').count()) break;
    const before = (await texts()).length;
    await log.evaluate((el) => { el.scrollTop = 0; });
    await dan.page.waitForFunction(
      ({ before }) => document.querySelectorAll('[data-testid="message-log"] .msg-text').length > before
        || document.querySelector('[data-testid="message-log"] .log-start'),
      { before },
    );
  }
  await log.getByText('This is the beginning of the conversation.').waitFor();
  await screenshot(dan.page, 'history', '01-top-of-history');
  const all = await texts();
  assert.deepEqual(all, Array.from({ length: total }, (_, i) => `History line ${i + 1}`));

  assertNoBrowserErrors(alice, dan);
  await alice.context.close();
  await dan.context.close();
});

test('the alert tone plays for colleagues’ messages, not my own, and not when muted', { timeout: 90_000 }, async () => {
  const erin = await openUser(browser, server, { label: 'erin' });
  const alice = await openUser(browser, server, { label: 'alice' });
  // Record what the page plays instead of relying on the browser's autoplay policy.
  await alice.context.addInitScript(() => {
    window.playedTones = [];
    HTMLMediaElement.prototype.play = function play() {
      window.playedTones.push(new URL(this.src).pathname);
      return Promise.resolve();
    };
  });
  await signIn(erin.page, DEMO.erin);
  await signIn(alice.page, DEMO.alice);
  const played = () => alice.page.evaluate(() => window.playedTones.slice());

  await startChat(erin.page, DEMO.alice.name);
  await sendMessage(erin.page, 'Ping from Erin');
  await alice.page.waitForFunction(() => window.playedTones.length === 1);
  assert.deepEqual(await played(), ['/sounds/chime.wav']);

  await openConversation(alice.page, DEMO.erin.name);
  await sendMessage(alice.page, 'My own message');
  await message(alice.page, 'My own message').locator('.msg-status', { hasText: /Sent|Read by/ }).waitFor();
  await waitForMessage(erin.page, 'My own message');
  assert.equal((await played()).length, 1, 'no tone for my own message');

  await alice.page.getByRole('link', { name: /Settings/ }).click();
  await alice.page.getByRole('switch', { name: /alert tone/ }).uncheck();
  await alice.page.getByText('Alert tone muted.').waitFor();
  await sendMessage(erin.page, 'Second ping');
  await alice.page.getByTestId('messages-dot').waitFor();
  assert.equal((await played()).length, 1, 'no tone while muted');

  assertNoBrowserErrors(erin, alice);
  await erin.context.close();
  await alice.context.close();
});
