// Shared helpers for the browser tests: start the real server on a loopback
// port with a fresh data directory, drive Debian's Chromium with
// playwright-core, collect console errors, save screenshots.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startWebProxy } from './web-proxy.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const SCREENSHOTS = path.join(REPO, 'test-output', 'screenshots');
const LOGS = path.join(REPO, 'test-output', 'logs');

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'switchboard', 'target');
export const BIN = process.env.SWITCHBOARD_BIN || path.join(targetDir, 'debug', 'switchboard');
export const DEMO_PASSWORD = 'demo-password-e2e';
export const ORG = 'demo';

export const DEMO = {
  alice: { number: '101', name: 'Alice Archer' },
  bob: { number: '102', name: 'Bob Baker' },
  carol: { number: '103', name: 'Carol Chen' },
  dan: { number: '104', name: 'Dan Diaz' },
  erin: { number: '105', name: 'Erin Evans' },
};

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A port that was free a moment ago (bind port 0, read it, release it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * The switchboard binary serving a temporary data directory. `port: 0` lets
 * the server choose; restart() reuses the directory (and the port when one
 * was given).
 */
export class Server {
  constructor({ name, dataDir, port }) {
    this.name = name;
    this.dataDir = dataDir;
    this.port = port;
    this.child = null;
    this.url = null;
    this.proxy = null;
    this.starts = 0;
  }

  static async start(name, { port = 0 } = {}) {
    assert.ok(fs.existsSync(BIN), `switchboard binary not found at ${BIN}: build it with "cargo build -p switchboard" or set SWITCHBOARD_BIN`);
    const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), `switchboard-e2e-${name}-`));
    const server = new Server({ name, dataDir, port });
    await server.#spawn();
    return server;
  }

  async #spawn() {
    this.starts += 1;
    await fsp.mkdir(LOGS, { recursive: true });
    const log = fs.createWriteStream(path.join(LOGS, `${this.name}-server-${this.starts}.log`));
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--demo', '--demo-password', DEMO_PASSWORD];
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_BACKTRACE: '1' } });
    this.child = child;
    child.stderr.pipe(log);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    const lines = readline.createInterface({ input: child.stdout });
    const listening = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not print "listening on" within 60 s')), 60_000);
      lines.on('line', (line) => {
        log.write(`${line}\n`);
        const match = line.match(/listening on (http:\/\/127\.0\.0\.1:(\d+))/);
        if (match) {
          clearTimeout(timer);
          resolve(match);
        }
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the server exited before listening (code ${code}, signal ${signal}); see test-output/logs`));
      });
    });
    const match = await listening;
    this.port = Number(match[2]);
    this.apiUrl = match[1];
    // E2E_WEB_FROM_DISK=1 serves web/ from the work tree (no rebuild needed
    // while working on the portal); CI always tests the embedded files.
    if (process.env.E2E_WEB_FROM_DISK === '1') {
      if (!this.proxy) this.proxy = await startWebProxy(path.join(REPO, 'web'), this.apiUrl);
      else this.proxy.setBackend(this.apiUrl);
      this.url = this.proxy.url;
    } else {
      this.url = this.apiUrl;
    }
  }

  /** SIGTERM, wait for the process to exit. */
  async stop() {
    if (!this.child) return;
    const child = this.child;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  async restart() {
    await this.stop();
    await this.#spawn();
  }

  async close() {
    await this.stop();
    await this.proxy?.close();
    await fsp.rm(this.dataDir, { recursive: true, force: true });
  }

  /** Runs `switchboard admin …` against this data directory. */
  admin(...args) {
    return new Promise((resolve, reject) => {
      const child = spawn(BIN, ['admin', '--data-dir', this.dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`admin ${args.join(' ')} failed: ${out}`))));
    });
  }
}

/** Chromium with a fresh profile (Playwright creates a new temporary user-data directory). */
export function launchBrowser() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

/**
 * One person at one browser: an isolated context (own cookies and storage)
 * with a page whose console errors and page errors are collected.
 */
export async function openUser(browser, server, { viewport = { width: 1280, height: 800 }, label = 'user' } = {}) {
  const context = await browser.newContext({ viewport, baseURL: server.url });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const user = { context, page, label, errors: [], dialogs: [], allowed: [], failedRequests: [] };
  // Which request a "Failed to load resource" line was about, for the report.
  page.on('requestfailed', (request) => user.failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400) user.failedRequests.push(`${response.request().method()} ${response.url()}: ${response.status()}`);
  });
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (user.allowed.some((pattern) => pattern.test(text))) return;
    user.errors.push(`console: ${text}`);
  });
  page.on('pageerror', (error) => user.errors.push(`pageerror: ${error.message}`));
  page.on('dialog', async (dialog) => {
    user.dialogs.push(dialog.message());
    await dialog.dismiss().catch(() => {});
  });
  return user;
}

/**
 * Lets Chromium's "Failed to load resource" line for one HTTP status pass,
 * for requests the test provokes on purpose (e.g. a wrong password → 401).
 */
export function allowFailedLoad(user, status) {
  user.allowed.push(new RegExp(`^Failed to load resource: the server responded with a status of ${status}\\b`));
}

export function assertNoBrowserErrors(...users) {
  for (const user of users) {
    assert.deepEqual(user.errors, [], `${user.label}: errors in the browser console (failed requests: ${user.failedRequests.join('; ') || 'none'})`);
    assert.deepEqual(user.dialogs, [], `${user.label}: unexpected dialogs`);
  }
}

let shotCounter = 0;
/** Saves a screenshot as test-output/screenshots/<test>-<step>.png. */
export async function screenshot(page, test, step) {
  await fsp.mkdir(SCREENSHOTS, { recursive: true });
  shotCounter += 1;
  const file = path.join(SCREENSHOTS, `${test}-${step}.png`);
  await page.screenshot({ path: file });
  return file;
}

// ---- what a person does ----

export async function signIn(page, who, { password = DEMO_PASSWORD, organization = ORG } = {}) {
  const number = typeof who === 'string' ? who : who.number;
  await page.goto('/');
  await page.getByLabel('Organization').fill(organization);
  await page.getByLabel('Extension').fill(number);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.topbar').waitFor();
  await page.waitForFunction(() => !document.querySelector('.sidebar-loading') || document.querySelector('.sidebar-loading').hidden);
}

/** Opens (or creates) the direct chat with a colleague through + New → Chat. */
export async function startChat(page, name) {
  await page.getByRole('button', { name: 'New', exact: true }).click();
  await page.getByRole('menuitem', { name: /Chat/ }).click();
  const dialog = page.getByRole('dialog', { name: 'New chat' });
  await dialog.getByRole('searchbox').fill(name.split(' ')[0]);
  await dialog.getByRole('button', { name: new RegExp(name) }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.locator('.conversation-title', { hasText: name }).waitFor();
}

/** Clicks a conversation in the sidebar. */
export async function openConversation(page, title) {
  await page.locator('.conversation-row', { hasText: title }).first().click();
  await page.locator('.conversation-name', { hasText: title }).waitFor();
}

export async function sendMessage(page, text) {
  const box = page.getByTestId('compose');
  await box.fill(text);
  await box.press('Enter');
}

/** The bubble of a message with exactly this text. */
export function message(page, text) {
  return page.locator('.msg').filter({ has: page.locator('.msg-text', { hasText: text }) });
}

export async function waitForMessage(page, text) {
  await message(page, text).first().waitFor();
}

/** The unread count shown in a sidebar row, or 0. */
export async function unreadIn(page, title) {
  const badge = page.locator('.conversation-row', { hasText: title }).locator('.unread-count');
  return (await badge.count()) ? Number(await badge.textContent()) : 0;
}
