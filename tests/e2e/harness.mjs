// Shared helpers for the browser tests: start the real server on a loopback
// port with a fresh data directory, drive Debian's Chromium with
// playwright-core, collect console errors, save screenshots.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
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
import { startBalancer } from './balancer.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');

/**
 * How many nodes each test server runs (E2E_NODES, default 1). With more,
 * every server is two switchboard processes on a fresh PostgreSQL database
 * (E2E_POSTGRES: a URL whose user may CREATE DATABASE), joined by their own
 * nats-server (E2E_NATS_SERVER), behind a round-robin balancer
 * (balancer.mjs) that the browsers talk to.
 */
export const NODES = Number(process.env.E2E_NODES || '1');
assert.ok(Number.isInteger(NODES) && NODES >= 1, `E2E_NODES must be a number of nodes, not ${process.env.E2E_NODES}`);
// A run with several nodes keeps its screenshots and logs apart, so that
// both runs of a CI pass can be looked at.
const OUTPUT = NODES === 1 ? '' : `${NODES}-nodes`;
export const SCREENSHOTS = path.join(REPO, 'test-output', 'screenshots', OUTPUT);
const LOGS = path.join(REPO, 'test-output', 'logs', OUTPUT);

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

const POSTGRES = process.env.E2E_POSTGRES;
const NATS_SERVER = process.env.E2E_NATS_SERVER || '/usr/sbin/nats-server';

/**
 * Paths the balancer sends to the first node only. The phone simulator is a
 * demo carrier whose phones live in one node's memory, so its page must
 * talk to one node; the test that texts a simulated phone runs on one node
 * only (see sms.test.mjs).
 */
const PINNED_TO_FIRST_NODE = ['/simulator'];

/** Runs a command to its end; rejects with its output when it fails. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(Object.assign(new Error(`${command} ${args.join(' ')} failed: ${out}`), { out }))));
  });
}

/**
 * Starts `command` and waits for a line of its output (stdout or stderr)
 * to match `ready`; everything it prints goes to `logFile`. Resolves with
 * the match, the child and a promise of its exit.
 */
async function startProcess(command, args, logFile, ready, what) {
  await fsp.mkdir(LOGS, { recursive: true });
  const log = fs.createWriteStream(logFile);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_BACKTRACE: '1' } });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const match = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} was not ready within 60 s; see ${logFile}`)), 60_000);
    const watch = (stream) => readline.createInterface({ input: stream }).on('line', (line) => {
      log.write(`${line}\n`);
      const found = line.match(ready);
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    watch(child.stdout);
    watch(child.stderr);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited before it was ready (code ${code}, signal ${signal}); see ${logFile}`));
    });
  });
  return { child, exited, match };
}

/** SIGTERM, and SIGKILL if it has not exited 15 s later; waits for the exit. */
async function stopProcess(proc) {
  if (!proc) return;
  const { child, exited } = proc;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** A new database on the E2E_POSTGRES server; resolves with its name and URL. */
async function createDatabase(name) {
  const db = `e2e_${name.toLowerCase().replace(/[^a-z0-9]/g, '_')}_${crypto.randomBytes(4).toString('hex')}`;
  await run('psql', [POSTGRES, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE ${db}`]);
  const url = new URL(POSTGRES);
  url.pathname = `/${db}`;
  return { name: db, url: url.href };
}

async function dropDatabase(database) {
  await run('psql', [POSTGRES, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP DATABASE IF EXISTS ${database.name} WITH (FORCE)`]);
}

/**
 * The switchboard binary serving a temporary data directory. `port: 0` lets
 * the server choose; restart() reuses the directory (and the port when one
 * was given).
 *
 * With E2E_NODES=2 it is two nodes behind a balancer instead: `url` and
 * `apiUrl` are the balancer's (also the nodes' public URL, which webhook
 * URLs are built from), `port` is the balancer's, and stop(), restart()
 * and close() act on both nodes.
 */
export class Server {
  constructor({ name, dataDirs, port }) {
    this.name = name;
    this.dataDirs = dataDirs;
    this.dataDir = dataDirs[0];
    this.port = port;
    this.nodes = [];
    this.url = null;
    this.apiUrl = null;
    this.proxy = null;
    this.balancer = null;
    this.nats = null;
    this.database = null;
    this.starts = 0;
  }

  static async start(name, { port = 0 } = {}) {
    assert.ok(fs.existsSync(BIN), `switchboard binary not found at ${BIN}: build it with "cargo build -p switchboard" or set SWITCHBOARD_BIN`);
    const base = await fsp.mkdtemp(path.join(os.tmpdir(), `switchboard-e2e-${name}-`));
    if (NODES === 1) {
      const server = new Server({ name, dataDirs: [base], port });
      server.base = base;
      await server.#spawn();
      return server;
    }
    assert.ok(POSTGRES, 'E2E_NODES needs E2E_POSTGRES: a PostgreSQL URL whose user may create databases');
    assert.ok(fs.existsSync(NATS_SERVER), `nats-server not found at ${NATS_SERVER}: set E2E_NATS_SERVER`);
    const dataDirs = [];
    for (let i = 1; i <= NODES; i += 1) dataDirs.push(path.join(base, `node${i}`));
    const server = new Server({ name, dataDirs, port });
    server.base = base;
    try {
      await server.#prepareNodes();
      await server.#spawn();
    } catch (e) {
      await server.close().catch(() => {});
      throw e;
    }
    return server;
  }

  /**
   * What the nodes share besides the database and the bus: the key that
   * seals carrier secrets and signs media links (created once, copied to
   * each), and the image folder, which stands in for the bucket a real
   * deployment of several nodes configures.
   */
  async #prepareNodes() {
    const key = crypto.randomBytes(32).toString('base64');
    const media = path.join(this.base, 'media');
    await fsp.mkdir(media);
    for (const dir of this.dataDirs) {
      await fsp.mkdir(dir);
      await fsp.writeFile(path.join(dir, 'secret.key'), key, { mode: 0o600 });
      await fsp.symlink(media, path.join(dir, 'media'));
    }
    this.database = await createDatabase(this.name);
    this.nats = await startProcess(
      NATS_SERVER, ['-a', '127.0.0.1', '-p', '-1'],
      path.join(LOGS, `${this.name}-nats.log`),
      /Listening for client connections on (127\.0\.0\.1:\d+)/, 'nats-server',
    );
    this.nats.url = `nats://${this.nats.match[1]}`;
    this.balancer = await startBalancer({ port: this.port, pinned: PINNED_TO_FIRST_NODE });
    this.port = Number(new URL(this.balancer.url).port);
  }

  async #spawn() {
    this.starts += 1;
    if (NODES === 1) {
      const node = await this.#spawnNode(this.dataDir, this.port, `${this.name}-server-${this.starts}.log`);
      this.nodes = [node];
      this.port = node.port;
      this.apiUrl = node.url;
    } else {
      // All at once, as nodes of a deployment start: on a fresh database
      // they race to migrate it and to seed the demo organization.
      this.nodes = await Promise.all(this.dataDirs.map((dir, i) => this.#spawnNode(
        dir, 0, `${this.name}-node${i + 1}-server-${this.starts}.log`,
        ['--database-url', this.database.url, '--bus-url', this.nats.url, '--public-url', this.balancer.url],
      )));
      this.balancer.setBackends(this.nodes.map((node) => node.url));
      this.apiUrl = this.balancer.url;
    }
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

  async #spawnNode(dataDir, port, logName, extra = []) {
    const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--demo', '--demo-password', DEMO_PASSWORD, ...extra];
    const node = await startProcess(BIN, args, path.join(LOGS, logName), /listening on (http:\/\/127\.0\.0\.1:(\d+))/, 'the server');
    node.url = node.match[1];
    node.port = Number(node.match[2]);
    return node;
  }

  /** SIGTERM every node, wait for them to exit. */
  async stop() {
    const nodes = this.nodes;
    this.nodes = [];
    await Promise.all(nodes.map(stopProcess));
  }

  async restart() {
    await this.stop();
    await this.#spawn();
  }

  async close() {
    await this.stop();
    await this.proxy?.close();
    if (this.balancer) {
      // Which node served how much, to show the load was spread.
      const sent = [...this.balancer.sent].map(([url, n]) => `${url} ${n}`).join('\n');
      await fsp.writeFile(path.join(LOGS, `${this.name}-balancer.log`), `${sent}\n`).catch(() => {});
      await this.balancer.close();
    }
    await stopProcess(this.nats);
    if (this.database) await dropDatabase(this.database);
    await fsp.rm(this.base, { recursive: true, force: true });
  }

  /** Runs `switchboard admin …` against this server's database. */
  admin(...args) {
    const database = this.database ? ['--database-url', this.database.url] : [];
    return run(BIN, ['admin', '--data-dir', this.dataDir, ...database, ...args])
      .catch((e) => { throw new Error(`admin ${args.join(' ')} failed: ${e.out ?? e.message}`); });
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
