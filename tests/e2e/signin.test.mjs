// Sessions: an expired session brings the user back to sign-in without
// losing drafts or unsent messages; too many failed sign-ins are rate
// limited with a clear message.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, DEMO, DEMO_PASSWORD, launchBrowser, openUser, signIn, startChat, openConversation,
  sendMessage, waitForMessage, message, screenshot, assertNoBrowserErrors, allowFailedLoad,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start('signin');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function fillSignIn(page, number, password) {
  await page.getByLabel('Organization').fill('demo');
  await page.getByLabel('Extension').fill(number);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('an ended session returns to sign-in and keeps drafts', { timeout: 90_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const bob = await openUser(browser, server, { label: 'bob' });
  await signIn(alice.page, DEMO.alice);
  await signIn(bob.page, DEMO.bob);
  await startChat(bob.page, DEMO.carol.name);
  await bob.page.getByTestId('compose').fill('Half a thought');
  await startChat(bob.page, DEMO.alice.name);
  await bob.page.getByTestId('compose').fill('Are you there?');
  const aliceChat = bob.page.url();

  // The administrator resets Bob's password: his sessions end, and the
  // server closes his live connection, which brings him to sign-in.
  const csrf = (await alice.context.cookies()).find((c) => c.name === 'sb_csrf').value;
  const list = await alice.context.request.get('/api/v1/admin/extensions');
  const bobId = (await list.json()).extensions.find((e) => e.number === DEMO.bob.number).id;
  const reset = await alice.context.request.post(`/api/v1/admin/extensions/${bobId}/password`, {
    headers: { 'X-CSRF-Token': csrf },
    data: { password: 'bob-new-password-1' },
  });
  assert.ok(reset.ok(), `password reset answered ${reset.status()}`);
  await bob.page.getByText('Your session has ended').waitFor();
  assert.equal(await bob.page.getByLabel('Extension').inputValue(), DEMO.bob.number);
  await screenshot(bob.page, 'session', '01-session-ended');

  await bob.page.getByLabel('Password').fill('bob-new-password-1');
  await bob.page.getByRole('button', { name: 'Sign in' }).click();
  await bob.page.locator('.conversation-name', { hasText: DEMO.alice.name }).waitFor();
  assert.equal(bob.page.url(), aliceChat);

  // Both drafts are still there; the one in this conversation can be sent.
  const box = bob.page.getByTestId('compose');
  assert.equal(await box.inputValue(), 'Are you there?');
  await box.press('Enter');
  await openConversation(alice.page, DEMO.bob.name);
  await waitForMessage(alice.page, 'Are you there?');
  await openConversation(bob.page, DEMO.carol.name);
  assert.equal(await bob.page.getByTestId('compose').inputValue(), 'Half a thought');

  assertNoBrowserErrors(alice, bob);
  await alice.context.close();
  await bob.context.close();
});

test('a message sent just as the session ends goes out, once, after signing in again', { timeout: 90_000 }, async () => {
  const dan = await openUser(browser, server, { label: 'dan' });
  const erin = await openUser(browser, server, { label: 'erin' });
  await signIn(dan.page, DEMO.dan);
  await signIn(erin.page, DEMO.erin);
  await startChat(dan.page, DEMO.erin.name);

  // The server answers the send with 401, as it does for an ended session.
  allowFailedLoad(dan, 401);
  await dan.page.route('**/api/v1/conversations/*/messages', (route) => (route.request().method() === 'POST'
    ? route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unauthenticated', message: 'sign in first' } }) })
    : route.fallback()));
  await sendMessage(dan.page, 'Sent as the session ended');
  await dan.page.getByText('Your session has ended').waitFor();
  await dan.page.unroute('**/api/v1/conversations/*/messages');

  await dan.page.getByLabel('Password').fill(DEMO_PASSWORD);
  await dan.page.getByRole('button', { name: 'Sign in' }).click();
  await message(dan.page, 'Sent as the session ended').locator('.msg-status', { hasText: /Sent|Read by/ }).waitFor();
  await openConversation(erin.page, DEMO.dan.name);
  await waitForMessage(erin.page, 'Sent as the session ended');
  assert.equal(await message(erin.page, 'Sent as the session ended').count(), 1);
  assert.equal(await message(dan.page, 'Sent as the session ended').count(), 1);

  assertNoBrowserErrors(dan, erin);
  await dan.context.close();
  await erin.context.close();
});

// Last in this file: it trips the limit for this client address too.
test('repeated failed sign-ins are rate limited with a clear message', { timeout: 90_000 }, async () => {
  const erin = await openUser(browser, server, { label: 'erin' });
  allowFailedLoad(erin, 401);
  allowFailedLoad(erin, 429);
  await erin.page.goto('/');
  await fillSignIn(erin.page, DEMO.erin.number, 'wrong-password');
  const error = erin.page.locator('.form-error');
  await error.filter({ hasText: 'do not match' }).waitFor();

  let limited = false;
  for (let attempt = 0; attempt < 15 && !limited; attempt += 1) {
    await erin.page.getByLabel('Password').fill('wrong-password');
    await erin.page.getByRole('button', { name: 'Sign in' }).click();
    await erin.page.waitForFunction(() => {
      const button = document.querySelector('.signin-form button[type=submit]');
      return button && !button.classList.contains('busy');
    });
    limited = (await error.textContent()).includes('Too many failed attempts');
  }
  assert.ok(limited, 'the rate limit was reached');
  await error.filter({ hasText: /Try again in \d+ (seconds?|minutes?)/ }).waitFor();
  assert.equal(await erin.page.getByRole('button', { name: 'Sign in' }).isDisabled(), true);
  await screenshot(erin.page, 'signin', '02-rate-limited');

  assertNoBrowserErrors(erin);
  await erin.context.close();
});
