// Keyboard only: sign in, start a chat from + New, send, move between
// conversations; the landmarks and live regions screen readers rely on.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, DEMO, DEMO_PASSWORD, launchBrowser, openUser, signIn, startChat, sendMessage,
  waitForMessage, screenshot, assertNoBrowserErrors,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start('keyboard');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return { tag: el?.tagName, label: el?.getAttribute('aria-label') || el?.textContent?.trim().slice(0, 40) || '' };
  });
}

test('the portal works from the keyboard alone', { timeout: 90_000 }, async () => {
  const carol = await openUser(browser, server, { label: 'carol' });
  const dan = await openUser(browser, server, { label: 'dan' });
  await signIn(dan.page, DEMO.dan);
  await startChat(dan.page, DEMO.carol.name);
  await sendMessage(dan.page, 'Morning Carol');

  const { page } = carol;
  const kb = page.keyboard;
  await page.goto('/');
  // The sign-in page focuses the first empty field.
  await page.getByLabel('Organization').waitFor();
  assert.equal((await focused(page)).tag, 'INPUT');
  await kb.type('demo');
  await kb.press('Tab');
  await kb.type(DEMO.carol.number);
  await kb.press('Tab');
  await kb.type(DEMO_PASSWORD);
  await kb.press('Enter');
  await page.locator('.conversation-row', { hasText: DEMO.dan.name }).waitFor();

  // Landmarks and live regions.
  assert.equal(await page.getByRole('navigation', { name: 'Sections' }).count(), 1);
  assert.equal(await page.getByRole('list', { name: 'Conversations' }).count(), 1);

  // + New → Chat with the keyboard: open the menu, arrow to Chat, search, pick.
  await page.getByRole('button', { name: 'New', exact: true }).focus();
  await kb.press('Enter');
  await page.getByRole('menu', { name: 'New conversation' }).waitFor();
  assert.match((await focused(page)).label, /Chat/);
  await kb.press('ArrowDown');
  assert.match((await focused(page)).label, /Group/);
  await kb.press('ArrowUp');
  await kb.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'New chat' });
  await dialog.waitFor();
  await kb.type('Erin');
  await kb.press('Enter'); // moves to the first match
  await screenshot(page, 'keyboard', '01-picker-focus');
  await kb.press('Enter');
  await page.locator('.conversation-name', { hasText: DEMO.erin.name }).waitFor();

  // The message box has focus on a wide screen; Enter sends.
  await page.getByTestId('compose').waitFor();
  await page.waitForFunction(() => document.activeElement?.dataset?.testid === 'compose');
  await kb.type('Hello Erin, typed without a mouse');
  await kb.press('Enter');
  await page.locator('.msg-status', { hasText: 'Sent' }).waitFor();
  const log = page.getByRole('log');
  assert.equal(await log.getAttribute('aria-live'), 'polite');

  // Arrow keys move through the conversation list; Enter opens.
  await page.locator('.conversation-row').first().focus();
  await kb.press('ArrowDown');
  assert.match((await focused(page)).label, new RegExp(DEMO.dan.name));
  await screenshot(page, 'keyboard', '02-list-focus');
  await kb.press('Enter');
  await waitForMessage(page, 'Morning Carol');

  assertNoBrowserErrors(carol, dan);
  await carol.context.close();
  await dan.context.close();
});
