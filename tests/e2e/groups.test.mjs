// Groups: create, rename (a system message for everyone), add and remove
// participants, leave.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, DEMO, launchBrowser, openUser, signIn, openConversation, sendMessage,
  waitForMessage, message, screenshot, assertNoBrowserErrors,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start('groups');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

function systemMessage(page, pattern) {
  return page.locator('.system-msg .system-pill', { hasText: pattern });
}

test('group create, rename, add and remove', { timeout: 120_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const bob = await openUser(browser, server, { label: 'bob' });
  const carol = await openUser(browser, server, { label: 'carol' });
  const dan = await openUser(browser, server, { label: 'dan' });
  await Promise.all([
    signIn(alice.page, DEMO.alice),
    signIn(bob.page, DEMO.bob),
    signIn(carol.page, DEMO.carol),
    signIn(dan.page, DEMO.dan),
  ]);

  // Create.
  await alice.page.getByRole('button', { name: 'New', exact: true }).click();
  await alice.page.getByRole('menuitem', { name: /Group/ }).click();
  const dialog = alice.page.getByRole('dialog', { name: 'New group' });
  await dialog.getByLabel('Group name').fill('Project Falcon');
  await dialog.getByLabel(DEMO.bob.name).check();
  await dialog.getByLabel(DEMO.carol.name).check();
  await screenshot(alice.page, 'groups', '01-new-group-dialog');
  await dialog.getByRole('button', { name: 'Create group' }).click();
  await dialog.waitFor({ state: 'detached' });
  await alice.page.locator('.conversation-name', { hasText: 'Project Falcon' }).waitFor();
  await sendMessage(alice.page, 'Welcome to the Falcon project!');

  for (const user of [bob, carol]) {
    await user.page.locator('.conversation-row', { hasText: 'Project Falcon' }).waitFor();
    await openConversation(user.page, 'Project Falcon');
    await waitForMessage(user.page, 'Welcome to the Falcon project!');
    // Others' messages in a group carry the sender's name.
    await message(user.page, 'Welcome to the Falcon project!').locator('.msg-sender', { hasText: DEMO.alice.name }).waitFor();
  }
  assert.equal(await dan.page.locator('.conversation-row', { hasText: 'Project Falcon' }).count(), 0);
  await sendMessage(bob.page, 'Glad to be here.');
  await waitForMessage(alice.page, 'Glad to be here.');
  await screenshot(bob.page, 'groups', '02-group-conversation');

  // Rename: everyone sees the new name and a system message.
  await alice.page.getByRole('button', { name: 'Rename' }).click();
  const rename = alice.page.getByRole('dialog', { name: 'Rename group' });
  await rename.getByLabel('Group name').fill('Falcon Team');
  await rename.getByRole('button', { name: 'Rename' }).click();
  await rename.waitFor({ state: 'detached' });
  for (const user of [alice, bob, carol]) {
    await user.page.locator('.conversation-name', { hasText: 'Falcon Team' }).waitFor();
    await systemMessage(user.page, /Falcon Team/).first().waitFor();
    await user.page.locator('.conversation-row', { hasText: 'Falcon Team' }).waitFor();
  }
  await screenshot(carol.page, 'groups', '03-renamed');

  // Add Dan.
  await alice.page.getByRole('button', { name: 'Add participants' }).click();
  const add = alice.page.getByRole('dialog', { name: /Add people/ });
  await add.getByLabel(DEMO.dan.name).check();
  await add.getByRole('button', { name: 'Add', exact: true }).click();
  await add.waitFor({ state: 'detached' });
  await dan.page.locator('.conversation-row', { hasText: 'Falcon Team' }).waitFor();
  await openConversation(dan.page, 'Falcon Team');
  for (const user of [alice, bob, dan]) {
    await systemMessage(user.page, /Dan Diaz/).first().waitFor();
  }
  await alice.page.getByRole('button', { name: 'Members (4)' }).waitFor();
  await screenshot(dan.page, 'groups', '04-dan-added');

  // Remove Carol: she loses the group; the others see it in the history.
  await alice.page.getByRole('button', { name: 'Members (4)' }).click();
  const members = alice.page.getByRole('dialog', { name: 'Members' });
  await screenshot(alice.page, 'groups', '05-members');
  await members.getByRole('button', { name: `Remove ${DEMO.carol.name}` }).click();
  await members.getByText(DEMO.carol.name).waitFor({ state: 'detached' });
  await members.getByRole('button', { name: 'Close' }).click();
  await carol.page.locator('.conversation-row', { hasText: 'Falcon Team' }).waitFor({ state: 'detached' });
  await carol.page.getByText('No conversations yet').first().waitFor();
  for (const user of [alice, bob, dan]) {
    await systemMessage(user.page, /Carol Chen/).first().waitFor();
  }
  await alice.page.getByRole('button', { name: 'Members (3)' }).waitFor();
  await screenshot(carol.page, 'groups', '06-carol-removed');

  // Dan leaves.
  await dan.page.getByRole('button', { name: 'Leave' }).click();
  await dan.page.getByRole('dialog', { name: 'Leave group?' }).getByRole('button', { name: 'Leave group' }).click();
  await dan.page.locator('.conversation-row', { hasText: 'Falcon Team' }).waitFor({ state: 'detached' });
  await alice.page.getByRole('button', { name: 'Members (2)' }).waitFor();
  await systemMessage(bob.page, /Dan Diaz.*left|left.*Dan Diaz/).first().waitFor();
  await screenshot(bob.page, 'groups', '07-after-leave');

  // Sending still works for those who remain, and each message shows once.
  await sendMessage(bob.page, 'Just us two now.');
  await waitForMessage(alice.page, 'Just us two now.');
  assert.equal(await message(alice.page, 'Just us two now.').count(), 1);

  assertNoBrowserErrors(alice, bob, carol, dan);
  for (const user of [alice, bob, carol, dan]) await user.context.close();
});
