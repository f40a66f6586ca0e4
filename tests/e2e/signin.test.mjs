// Sessions: an expired session brings the user back to sign-in without
// losing drafts or unsent messages; too many failed sign-ins are rate
// limited with a clear message.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, DEMO, launchBrowser, openUser, signIn, startChat, openConversation,
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

test('an ended session returns to sign-in and keeps drafts and unsent messages', { timeout: 90_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const bob = await openUser(browser, server, { label: 'bob' });
  await signIn(alice.page, DEMO.alice);
  await signIn(bob.page, DEMO.bob);
  await startChat(bob.page, DEMO.carol.name);
  await bob.page.getByTestId('compose').fill('Half a thought');
  await startChat(bob.page, DEMO.alice.name);
  const aliceChat = bob.page.url();

  // The administrator resets Bob's password: his sessions end.
  const csrf = (await alice.context.cookies()).find((c) => c.name === 'sb_csrf').value;
  const list = await alice.context.request.get('/api/v1/admin/extensions');
  const bobId = (await list.json()).extensions.find((e) => e.number === DEMO.bob.number).id;
  const reset = await alice.context.request.post(`/api/v1/admin/extensions/${bobId}/password`, {
    headers: { 'X-CSRF-Token': csrf },
    data: { password: 'bob-new-password-1' },
  });
  assert.ok(reset.ok(), `password reset answered ${reset.status()}`);

  // Bob sends: the server says the session is gone, and he is asked to sign in.
  allowFailedLoad(bob, 401);
  await sendMessage(bob.page, 'Are you there?');
  await bob.page.getByText('Your session has ended').waitFor();
  assert.equal(await bob.page.getByLabel('Extension').inputValue(), DEMO.bob.number);
  await screenshot(bob.page, 'session', '01-session-ended');

  await bob.page.getByLabel('Password').fill('bob-new-password-1');
  await bob.page.getByRole('button', { name: 'Sign in' }).click();
  await bob.page.locator('.conversation-name', { hasText: DEMO.alice.name }).waitFor();
  assert.equal(bob.page.url(), aliceChat);

  // The message he sent as the session ended goes out once, now.
  await openConversation(alice.page, DEMO.bob.name);
  await waitForMessage(alice.page, 'Are you there?');
  await message(bob.page, 'Are you there?').locator('.msg-status', { hasText: /Sent|Read by/ }).waitFor();
  assert.equal(await message(alice.page, 'Are you there?').count(), 1);
  assert.equal(await message(bob.page, 'Are you there?').count(), 1);

  // And the draft in the other conversation is still there.
  await openConversation(bob.page, DEMO.carol.name);
  assert.equal(await bob.page.getByTestId('compose').inputValue(), 'Half a thought');

  assertNoBrowserErrors(alice, bob);
  await alice.context.close();
  await bob.context.close();
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
