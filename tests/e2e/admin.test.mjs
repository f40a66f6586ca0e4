// Administration and access: an administrator creates an extension that can
// then sign in and chat; members see no Admin tab and the API refuses them.
// Also: sign-in errors, settings, and the portal at phone width.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, DEMO, DEMO_PASSWORD, launchBrowser, openUser, signIn, startChat, openConversation,
  sendMessage, waitForMessage, screenshot, assertNoBrowserErrors, allowFailedLoad,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start('admin');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('an administrator creates an extension that can sign in and chat', { timeout: 120_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  await signIn(alice.page, DEMO.alice);
  await alice.page.getByRole('link', { name: /Admin/ }).click();
  await alice.page.getByRole('heading', { name: 'Administration' }).waitFor();
  await alice.page.locator('tr[data-number="105"]').waitFor();
  await screenshot(alice.page, 'admin', '01-admin-tab');

  const form = alice.page.getByRole('form', { name: 'Create extension' });
  await form.getByLabel('Extension number').fill('106');
  await form.getByLabel('Name').fill('Frank Fox');
  await form.getByLabel('Password').fill('frank-secret-1');
  await form.getByRole('button', { name: 'Create extension' }).click();
  await alice.page.locator('tr[data-number="106"]', { hasText: 'Frank Fox' }).waitFor();
  await screenshot(alice.page, 'admin', '02-extension-created');

  // A duplicate number is refused with a clear message.
  allowFailedLoad(alice, 409);
  await form.getByLabel('Extension number').fill('106');
  await form.getByLabel('Name').fill('Frank Again');
  await form.getByLabel('Password').fill('whatever-1');
  await form.getByRole('button', { name: 'Create extension' }).click();
  await form.getByRole('alert').filter({ hasText: /106/ }).waitFor();

  // Frank signs in and chats with Alice.
  const frank = await openUser(browser, server, { label: 'frank' });
  await signIn(frank.page, '106', { password: 'frank-secret-1' });
  await frank.page.locator('.whoami-name', { hasText: 'Frank Fox' }).waitFor();
  assert.equal(await frank.page.getByRole('link', { name: /Admin/ }).count(), 0);
  await startChat(frank.page, DEMO.alice.name);
  await sendMessage(frank.page, 'Hello Alice, Frank here.');
  await alice.page.getByRole('link', { name: /Messages/ }).click();
  await openConversation(alice.page, 'Frank Fox');
  await waitForMessage(alice.page, 'Hello Alice, Frank here.');
  await sendMessage(alice.page, 'Welcome aboard, Frank!');
  await waitForMessage(frank.page, 'Welcome aboard, Frank!');
  await screenshot(frank.page, 'admin', '03-new-extension-chats');

  // Grant admin: after signing in again Frank sees the Admin tab.
  await alice.page.getByRole('link', { name: /Admin/ }).click();
  await alice.page.getByRole('button', { name: 'Make admin Frank Fox' }).click();
  await alice.page.locator('tr[data-number="106"] .pill-admin').waitFor();

  // Rename an extension.
  await alice.page.getByRole('button', { name: 'Edit name of Frank Fox' }).click();
  const edit = alice.page.getByRole('dialog', { name: 'Edit extension 106' });
  await edit.getByLabel('Display name').fill('Franklin Fox');
  await edit.getByRole('button', { name: 'Save' }).click();
  await alice.page.locator('tr[data-number="106"]', { hasText: 'Franklin Fox' }).waitFor();

  // Import from CSV (pasted), all rows at once.
  await alice.page.getByLabel('or paste the CSV').fill('number,name,password,role\n107,Gina Gray,gina-secret-1,member\n108,Hugo Hill,hugo-secret-1,admin');
  await alice.page.getByRole('button', { name: 'Import' }).click();
  await alice.page.getByText('Created 2 extensions.').waitFor();
  await alice.page.locator('tr[data-number="108"]', { hasText: 'Hugo Hill' }).locator('.pill-admin').waitFor();
  await alice.page.locator('tr[data-number="107"]', { hasText: 'Gina Gray' }).waitFor();

  // Disable Frank: he is signed out at once and cannot sign in; enable him again.
  await alice.page.getByRole('button', { name: 'Disable Franklin Fox' }).click();
  await alice.page.getByRole('dialog', { name: /Disable/ }).getByRole('button', { name: 'Disable' }).click();
  await alice.page.locator('tr[data-number="106"] .pill-off').waitFor();
  await frank.page.getByText('Your session has ended').waitFor();
  allowFailedLoad(frank, 403);
  await frank.page.getByLabel('Password').fill('frank-secret-1');
  await frank.page.getByRole('button', { name: 'Sign in' }).click();
  await frank.page.getByRole('alert').filter({ hasText: 'disabled' }).waitFor();
  await screenshot(frank.page, 'admin', '04-disabled-sign-in');
  await alice.page.getByRole('button', { name: 'Enable Franklin Fox' }).click();
  await alice.page.locator('tr[data-number="106"] .pill-on').waitFor();
  await frank.page.getByLabel('Password').fill('frank-secret-1');
  await frank.page.getByRole('button', { name: 'Sign in' }).click();
  await frank.page.locator('.whoami-name', { hasText: 'Franklin Fox' }).waitFor();

  // The organization's alert tone.
  const tone = alice.page.getByLabel('Alert tone for everyone');
  await tone.selectOption('marimba');
  await alice.page.getByRole('button', { name: 'Save tone' }).click();
  await alice.page.getByText('Saved: Marimba.').waitFor();
  await screenshot(alice.page, 'admin', '05-tone-saved');

  assertNoBrowserErrors(alice, frank);
  await alice.context.close();
  await frank.context.close();
});

test('a CSV import shows a progress bar, then what it created or the rows it refused', { timeout: 180_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice-import' });
  await signIn(alice.page, DEMO.alice);
  await alice.page.getByRole('link', { name: /Admin/ }).click();
  await alice.page.getByRole('heading', { name: 'Administration' }).waitFor();
  await alice.page.locator('tr[data-number="105"]').waitFor();

  // Every value the progress bar shows while it is visible, in order.
  await alice.page.evaluate(() => {
    window.progressSeen = [];
    const bar = document.querySelector('[role="progressbar"]');
    new MutationObserver(() => {
      if (!bar.closest('[hidden]')) window.progressSeen.push(Number(bar.getAttribute('aria-valuenow')));
    }).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
  });

  const rows = Array.from({ length: 150 }, (_, i) => `${500 + i},Bulk Person ${i},bulk-secret-${i}`);
  await alice.page.getByLabel('or paste the CSV').fill(`number,name,password\n${rows.join('\n')}`);
  await alice.page.getByRole('button', { name: 'Import' }).click();
  await alice.page.waitForFunction(() => window.progressSeen.some((v) => v > 0 && v < 100));
  await screenshot(alice.page, 'admin', '06-import-progress');
  await alice.page.getByText('Created 150 extensions.').waitFor({ timeout: 150_000 });
  const seen = await alice.page.evaluate(() => window.progressSeen);
  assert.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]), `progress only moves forward: ${seen}`);
  assert.equal(await alice.page.getByRole('progressbar').count(), 0, 'the bar is gone once the import is over');
  await alice.page.locator('tr[data-number="649"]', { hasText: 'Bulk Person 149' }).waitFor();
  await screenshot(alice.page, 'admin', '07-import-created');

  // Taken numbers: nothing is created and every refused row is listed with
  // its reason; the keyboard reaches the explanation. Started from the
  // keyboard too.
  await alice.page.getByLabel('or paste the CSV').fill('number,name,password\n700,New Person,new-secret-1\n500,Bulk Again,new-secret-2\n701,Other Person,new-secret-3\n105,Erin Again,new-secret-4');
  await alice.page.getByRole('button', { name: 'Import' }).focus();
  await alice.page.keyboard.press('Enter');
  const refused = alice.page.getByRole('table', { name: '2 rows were refused; nothing was created' });
  await refused.waitFor();
  const cells = await refused.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  assert.deepEqual(cells, [
    ['3', '500', 'extension 500 already exists'],
    ['5', '105', 'extension 105 already exists'],
  ]);
  assert.equal(await alice.page.evaluate(() => document.activeElement?.textContent), '2 rows were refused; nothing was created');
  await screenshot(alice.page, 'admin', '08-import-refused');
  const list = await alice.context.request.get('/api/v1/admin/extensions');
  const numbers = (await list.json()).extensions.map((e) => e.number);
  assert.ok(!numbers.includes('700') && !numbers.includes('701'), 'nothing of the refused file was created');

  assertNoBrowserErrors(alice);
  await alice.context.close();
});

test('a member sees no Admin tab and the API refuses them', { timeout: 60_000 }, async () => {
  const bob = await openUser(browser, server, { label: 'bob' });
  await signIn(bob.page, DEMO.bob);
  assert.equal(await bob.page.getByRole('link', { name: /Admin/ }).count(), 0);

  // Typing the address does not show the admin page either.
  await bob.page.goto('/#/admin');
  await bob.page.waitForFunction(() => location.hash === '#/messages');
  assert.equal(await bob.page.getByRole('heading', { name: 'Administration' }).count(), 0);
  await screenshot(bob.page, 'member', '01-no-admin-tab');

  // The API itself refuses, whatever the page shows.
  const list = await bob.context.request.get('/api/v1/admin/extensions');
  assert.equal(list.status(), 403);
  assert.equal((await list.json()).error.code, 'forbidden');
  const cookies = await bob.context.cookies();
  const csrf = cookies.find((c) => c.name === 'sb_csrf')?.value;
  assert.ok(csrf, 'the sb_csrf cookie is set');
  const create = await bob.context.request.post('/api/v1/admin/extensions', {
    headers: { 'X-CSRF-Token': csrf },
    data: { number: '199', name: 'Mallory', password: 'nope-nope-1', role: 'admin' },
  });
  assert.equal(create.status(), 403);

  assertNoBrowserErrors(bob);
  await bob.context.close();
});

test('sign-in errors are clear; settings and sign-out work', { timeout: 60_000 }, async () => {
  const carol = await openUser(browser, server, { label: 'carol' });
  allowFailedLoad(carol, 401);
  await carol.page.goto('/');
  await carol.page.getByLabel('Organization').fill('demo');
  await carol.page.getByLabel('Extension').fill(DEMO.carol.number);
  await carol.page.getByLabel('Password').fill('not-the-password');
  await carol.page.getByRole('button', { name: 'Sign in' }).click();
  await carol.page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();
  await screenshot(carol.page, 'signin', '01-wrong-password');

  await carol.page.getByLabel('Password').fill(DEMO_PASSWORD);
  await carol.page.getByRole('button', { name: 'Sign in' }).click();
  await carol.page.locator('.whoami-name', { hasText: DEMO.carol.name }).waitFor();

  await carol.page.getByRole('link', { name: /Settings/ }).click();
  await carol.page.getByRole('heading', { name: 'Settings' }).waitFor();
  const tone = carol.page.getByRole('switch', { name: /alert tone/ });
  assert.equal(await tone.isChecked(), true);
  await tone.uncheck();
  await carol.page.getByText('Alert tone muted.').waitFor();
  await screenshot(carol.page, 'settings', '01-settings');
  // The choice is stored on the server.
  await carol.page.reload();
  await carol.page.getByRole('switch', { name: /alert tone/ }).waitFor();
  assert.equal(await carol.page.getByRole('switch', { name: /alert tone/ }).isChecked(), false);

  // Browser notifications: permission is asked for when turned on; the
  // choice stays on this device.
  await carol.context.grantPermissions(['notifications']);
  const notifications = carol.page.getByRole('switch', { name: /Browser notifications/ });
  assert.equal(await notifications.isChecked(), false);
  await notifications.check();
  await carol.page.getByText('Notifications on.').waitFor();
  await carol.page.reload();
  await carol.page.getByRole('switch', { name: /Browser notifications/ }).waitFor();
  assert.equal(await carol.page.getByRole('switch', { name: /Browser notifications/ }).isChecked(), true);

  await carol.page.getByRole('button', { name: 'Sign out' }).click();
  await carol.page.getByRole('button', { name: 'Sign in' }).waitFor();
  const me = await carol.context.request.get('/api/v1/me');
  assert.equal(me.status(), 401);

  assertNoBrowserErrors(carol);
  await carol.context.close();
});

test('at phone width the list and the conversation are two screens', { timeout: 60_000 }, async () => {
  const erin = await openUser(browser, server, { label: 'erin', viewport: { width: 390, height: 844 } });
  const dan = await openUser(browser, server, { label: 'dan' });
  await signIn(erin.page, DEMO.erin);
  await signIn(dan.page, DEMO.dan);
  await screenshot(erin.page, 'phone', '01-empty');
  await startChat(dan.page, DEMO.erin.name);
  await sendMessage(dan.page, 'Can you call the customer back? https://example.com/ticket/42');

  await erin.page.locator('.conversation-row', { hasText: DEMO.dan.name }).waitFor();
  await screenshot(erin.page, 'phone', '02-list');
  await openConversation(erin.page, DEMO.dan.name);
  await waitForMessage(erin.page, 'Can you call the customer back?');
  assert.equal(await erin.page.locator('.sidebar').isVisible(), false);
  await sendMessage(erin.page, 'On it.');
  await waitForMessage(dan.page, 'On it.');
  await screenshot(erin.page, 'phone', '03-conversation');

  await erin.page.getByRole('link', { name: 'Back to conversations' }).click();
  await erin.page.locator('.sidebar').waitFor();
  await erin.page.getByRole('link', { name: /Settings/ }).click();
  await erin.page.getByRole('heading', { name: 'Settings' }).waitFor();
  await screenshot(erin.page, 'phone', '04-settings');

  assertNoBrowserErrors(erin, dan);
  await erin.context.close();
  await dan.context.close();
});
