// The server restarts while a colleague is away; when they come back, their
// client resumes from its cursor and shows every message sent meanwhile,
// none twice.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  allowFailedLoad,
  Server, DEMO, freePort, launchBrowser, openUser, signIn, startChat, openConversation,
  sendMessage, waitForMessage, message, screenshot, assertNoBrowserErrors,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  // A fixed port, so the browser finds the server again after the restart.
  server = await Server.start('restart', { port: await freePort() });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('messages sent while a colleague was away arrive after reconnection, none twice', { timeout: 120_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const bob = await openUser(browser, server, { label: 'bob' });
  await signIn(alice.page, DEMO.alice);
  await signIn(bob.page, DEMO.bob);

  await startChat(alice.page, DEMO.bob.name);
  await sendMessage(alice.page, 'Before the restart');
  await openConversation(bob.page, DEMO.alice.name);
  await waitForMessage(bob.page, 'Before the restart');
  const chatUrl = alice.page.url();

  // Alice closes her tab; the server stops, cutting Bob's connection, and a
  // quiet banner says so. Then Bob goes away (his laptop loses the network)
  // while the server starts again: an offline browser may not notice a
  // connection cut, so he goes offline after it. Meanwhile his client's
  // attempts to reconnect fail, as they should.
  bob.allowed.push(/^WebSocket connection to .* failed/, /^Failed to load resource: net::ERR_CONNECTION_REFUSED/);
  allowFailedLoad(bob, 502); // the balancer in front of several nodes, with none up
  await alice.page.close();
  await server.stop();
  await bob.page.locator('.banner', { hasText: /offline|Reconnecting/ }).waitFor();
  await bob.context.setOffline(true);
  await server.restart();
  await screenshot(bob.page, 'restart', '01-bob-offline-banner');

  // Alice comes back to the restarted server (her session survived it).
  alice.page = await alice.context.newPage();
  alice.page.on('console', (m) => m.type() === 'error' && alice.errors.push(`console: ${m.text()}`));
  alice.page.on('pageerror', (e) => alice.errors.push(`pageerror: ${e.message}`));
  await alice.page.goto(chatUrl);
  await waitForMessage(alice.page, 'Before the restart');
  const missed = ['Missed one', 'Missed two', 'Missed three'];
  for (const text of missed) {
    await sendMessage(alice.page, text);
    await message(alice.page, text).locator('.msg-status', { hasText: 'Sent' }).waitFor();
  }
  assert.equal(await bob.page.locator('.msg-text', { hasText: 'Missed' }).count(), 0);

  // Bob is back: the client reconnects with its cursor and catches up.
  await bob.context.setOffline(false);
  for (const text of missed) await waitForMessage(bob.page, text);
  await bob.page.locator('.banner').waitFor({ state: 'hidden' });
  await sendMessage(alice.page, 'Live again');
  await waitForMessage(bob.page, 'Live again');

  const texts = await bob.page.locator('.log .msg-text').allTextContents();
  assert.deepEqual(texts, ['Before the restart', ...missed, 'Live again']);
  await screenshot(bob.page, 'restart', '02-bob-caught-up');

  // Bob answers over the new connection.
  await sendMessage(bob.page, 'Got them all');
  await waitForMessage(alice.page, 'Got them all');
  assert.equal(await message(alice.page, 'Got them all').count(), 1);

  assertNoBrowserErrors(alice, bob);
  await alice.context.close();
  await bob.context.close();
});

test('on resync the client reloads over REST and shows what it missed', { timeout: 90_000 }, async () => {
  const alice = await openUser(browser, server, { label: 'alice' });
  const carol = await openUser(browser, server, { label: 'carol' });
  // Carol's live connection passes through the test, which can hold frames
  // back and speak for the server.
  let holding = false;
  let lastCursor = null;
  let toCarol = null;
  await carol.page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
    const upstream = ws.connectToServer();
    toCarol = ws;
    upstream.onMessage((text) => {
      const frame = JSON.parse(text);
      if (frame.cursor) lastCursor = frame.cursor;
      if (!holding) ws.send(text);
    });
  });
  await signIn(alice.page, DEMO.alice);
  await signIn(carol.page, DEMO.carol);
  await startChat(alice.page, DEMO.carol.name);
  await sendMessage(alice.page, 'Before the gap');
  await openConversation(carol.page, DEMO.alice.name);
  await waitForMessage(carol.page, 'Before the gap');

  holding = true;
  for (const text of ['In the gap one', 'In the gap two']) {
    await sendMessage(alice.page, text);
    await message(alice.page, text).locator('.msg-status', { hasText: /Sent|Read by/ }).waitFor();
  }
  assert.equal(await carol.page.locator('.msg-text', { hasText: 'In the gap' }).count(), 0);

  // The server's answer to a cursor it can no longer replay from.
  holding = false;
  toCarol.send(JSON.stringify({ type: 'resync', cursor: lastCursor }));
  await waitForMessage(carol.page, 'In the gap one');
  await waitForMessage(carol.page, 'In the gap two');
  await carol.page.locator('.conversation-row', { hasText: 'In the gap two' }).waitFor();
  await screenshot(carol.page, 'resync', '01-reloaded');

  await sendMessage(alice.page, 'After the gap');
  await waitForMessage(carol.page, 'After the gap');
  const texts = await carol.page.locator('.log .msg-text').allTextContents();
  assert.deepEqual(texts, ['Before the gap', 'In the gap one', 'In the gap two', 'After the gap']);

  assertNoBrowserErrors(alice, carol);
  await alice.context.close();
  await carol.context.close();
});
