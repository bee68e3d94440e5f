// Shared helpers for scopegate's browser tests: a scopegate server in a fresh data folder, the CLI
// on the same store, headless Chromium (Debian's, never a downloaded one), sign-in, screenshots,
// interception of the demo app's callback URL, and HTTPS calls that trust the server's own cert.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { BIN, REPO_ROOT, launchServer, serverEnv, sleep, storeArgs, waitForBinary } from '../lib/scopegate.mjs';

export { BIN, REPO_ROOT, waitForBinary };

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const OUT_DIR = path.join(HERE, 'out');

export const DEMO = Object.freeze({
  password: 'scopegate-demo',
  admin: 'admin@scopegate.local',
  member: 'test-member@scopegate.local',
  developer: 'developer@scopegate.local',
  clientId: 'demoapp0000001',
  clientSecret: 'demo-secret-not-for-production',
  appName: 'Demo App',
  callback: 'http://127.0.0.1:8080/callback',
});


/**
 * Starts `scopegate serve --demo` on an ephemeral port in a fresh temporary data folder.
 * Returns { base, issuer, dir, cert, cli(...args), stop() }.
 */
export async function startServer({ timeoutMs = 90_000 } = {}) {
  const started = await launchServer('scopegate-e2e-', { timeoutMs });
  return {
    ...started,
    /** Runs the CLI on the server's store with --json and parses its output. */
    cli: (...args) => cli(started.dir, ...args),
  };
}

/** `scopegate --data-dir DIR --database-url sqlite://DIR/scopegate.db --json ARGS...`, parsed. */
export function cli(dir, ...args) {
  const out = execFileSync(BIN, [...storeArgs(dir), '--json', ...args], {
    env: serverEnv(),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  return out.trim() ? JSON.parse(out) : null;
}

/**
 * Launches headless Chromium with a fresh temporary profile. Returns { context, page, close() }.
 * (Playwright refuses --user-data-dir in args; launchPersistentContext passes our fresh folder.)
 */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium package (never a downloaded browser)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'scopegate-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.setDefaultNavigationTimeout(60_000);
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Serves chosen URLs from the test instead of the network, at the DevTools protocol's Fetch
 * level. Unlike page.route(), this also catches the target of a redirect, which is how a browser
 * reaches an OAuth client's redirect_uri (http://127.0.0.1:8080/callback has no server here).
 * `add(prefix, html)` serves every URL starting with prefix; `seen` lists the documents served (not favicons etc.).
 */
export async function interceptor(page) {
  const cdp = await page.context().newCDPSession(page);
  const routes = [];
  const seen = [];
  cdp.on('Fetch.requestPaused', async (e) => {
    const url = e.request.url;
    // The longest matching prefix wins.
    const route = routes
      .filter((r) => url.startsWith(r.prefix))
      .sort((a, b) => b.prefix.length - a.prefix.length)[0];
    try {
      if (!route) {
        await cdp.send('Fetch.continueRequest', { requestId: e.requestId });
        return;
      }
      if (e.resourceType === 'Document') seen.push(url);
      const body = typeof route.html === 'function' ? route.html(url) : route.html;
      await cdp.send('Fetch.fulfillRequest', {
        requestId: e.requestId,
        responseCode: 200,
        responseHeaders: [
          { name: 'Content-Type', value: 'text/html; charset=utf-8' },
          { name: 'Cache-Control', value: 'no-store' },
        ],
        body: Buffer.from(body).toString('base64'),
      });
    } catch {
      // The page may have navigated away or closed meanwhile.
    }
  });
  const api = {
    seen,
    async add(prefix, html) {
      routes.push({ prefix, html });
      // Fetch patterns use * wildcards; the prefix is matched exactly in the handler above.
      await cdp.send('Fetch.enable', {
        patterns: routes.map((r) => ({ urlPattern: `${r.prefix}*`, requestStage: 'Request' })),
      });
    },
    async detach() {
      await cdp.send('Fetch.disable').catch(() => {});
      await cdp.detach().catch(() => {});
    },
  };
  return api;
}

/** A callback page for the demo app's redirect URL, as a small client would show. */
export const CALLBACK_HTML = '<!doctype html><title>Demo callback</title><h1>Callback received</h1>';

/** Clicks a button or link and waits for the navigation it starts to load. */
export async function clickAndWait(page, locator) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
}

/**
 * Signs in on the page's sign-in form. If the page is not on /login, opens `${base}/login`
 * first. Returns the response status of the page signed in to (the form page on a failure).
 */
export async function signIn(page, email, password = DEMO.password, { base } = {}) {
  if (new URL(page.url()).pathname !== '/login') {
    if (!base) throw new Error('signIn: the page is not on /login and no base URL was given');
    await page.goto(`${base}/login`);
  }
  await page.locator('#email').fill(email);
  await page.locator('#password').fill(password);
  await clickAndWait(page, page.getByRole('button', { name: 'Sign in', exact: true }));
}

/** Clicks "Sign out" in the top bar and waits for the sign-in page. */
export async function signOut(page) {
  await clickAndWait(page, page.locator('header.top').getByRole('button', { name: 'Sign out' }));
}

/** A full-page screenshot into tests/browser/out/NAME.png. */
export async function screenshot(page, name) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The authorization URL for the demo app. */
export function authorizationUrl(base, { scope, state, clientId = DEMO.clientId, redirectUri = DEMO.callback, extra = {} } = {}) {
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, ...extra });
  if (state !== undefined) q.set('state', state);
  if (scope !== undefined) q.set('scope', scope);
  return `${base}/oauth/v2/authorization?${q}`;
}

/** The query parameters of a URL as a plain object. */
export function queryOf(url) {
  return Object.fromEntries(new URL(url).searchParams);
}

/** A random state value. */
export function randomState() {
  return `st-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
}

/**
 * POSTs an application/x-www-form-urlencoded body to the server over HTTPS, trusting only the
 * server's own self-signed certificate. Resolves { status, headers, text, json }.
 */
export function postForm(server, pathname, fields) {
  const body = new URLSearchParams(fields).toString();
  const url = new URL(pathname, server.base);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        ca: fs.readFileSync(server.cert),
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          'Content-Length': Buffer.byteLength(body),
          Accept: 'application/json',
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The table row of a product on the Products tab, by its exact name. */
export function productRow(page, name) {
  const exact = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return page.locator('table tbody tr').filter({ has: page.locator('td:first-child strong', { hasText: exact }) });
}

/** The text of the notice(s) on a page (ok and error), trimmed. */
export async function notices(page) {
  return (await page.locator('.notice').allTextContents()).map((t) => t.trim());
}

/** Collects the page's console errors and uncaught page errors as { page, text }. */
export function collectConsoleErrors(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push({ page: page.url(), text: m.text() });
  });
  page.on('pageerror', (e) => errors.push({ page: page.url(), text: String(e) }));
  return errors;
}
