// The developer portal in a real browser: create an app, add and request products, and the
// platform admin's review queue.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEMO,
  startServer,
  launchBrowser,
  signIn,
  signOut,
  clickAndWait,
  screenshot,
  productRow,
  notices,
  collectConsoleErrors,
} from './lib.mjs';

const MDP = 'Marketing Developer Platform (MDP)';
const SHARE = 'Share on LinkedIn';
const LEAD_SYNC = 'Lead Sync';

describe('developer portal', { timeout: 300_000 }, () => {
  let server;
  let browser;
  let page;
  let clientId;
  let consoleErrors = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = browser.page;
    consoleErrors = collectConsoleErrors(page);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  const productsUrl = () => `${server.base}/developers/apps/${clientId}/products`;

  it('sends a signed-out visitor to sign-in, then back to My apps', async () => {
    await page.goto(`${server.base}/developers/apps`);
    const url = new URL(page.url());
    assert.equal(url.pathname, '/login');
    assert.equal(url.searchParams.get('next'), '/developers/apps');
    // Not an authorization: no Cancel button.
    assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 0);
    await signIn(page, DEMO.developer);
    assert.equal(new URL(page.url()).pathname, '/developers/apps');
    await page.getByRole('heading', { name: 'My apps', level: 1 }).waitFor();
    // The developer owns the demo app.
    const demo = page.locator('table tbody tr', { hasText: DEMO.appName });
    assert.equal(await demo.count(), 1);
    assert.match(await demo.textContent(), new RegExp(DEMO.clientId));
    // Developers see no review queue link.
    assert.equal(await page.locator('nav.main a', { hasText: 'Review queue' }).count(), 0);
    await screenshot(page, 'portal-my-apps');
  });

  it('creates "Browser App" and shows its client secret once', async () => {
    await clickAndWait(page, page.getByRole('link', { name: 'Create app' }));
    assert.equal(new URL(page.url()).pathname, '/developers/apps/new');
    await page.getByLabel('App name').fill('Browser App');
    await page.getByLabel('Authorized redirect URL').fill('https://browser.example/cb');
    await page.getByLabel('Privacy policy URL').fill('https://browser.example/privacy');
    await screenshot(page, 'portal-create-app-form');
    await clickAndWait(page, page.getByRole('button', { name: 'Create app' }));

    await page.getByRole('heading', { name: 'Browser App is ready' }).waitFor();
    clientId = (await page.locator('#client-id').textContent()).trim();
    const secret = (await page.locator('#client-secret').textContent()).trim();
    assert.match(clientId, /^[A-Za-z0-9]{8,}$/, `client id ${clientId}`);
    assert.ok(secret.length >= 16, `client secret looks too short: ${JSON.stringify(secret)}`);
    assert.notEqual(secret, clientId);
    await screenshot(page, 'portal-app-created');

    // The CLI sees the same app on the same store.
    const shown = server.cli('app', 'show', clientId);
    assert.equal(shown.name, 'Browser App');
    assert.deepEqual(shown.redirect_uris, ['https://browser.example/cb']);
    assert.equal(shown.secrets.length, 1);

    // The secret is shown once: the Auth tab shows only a hint of it.
    await page.goto(`${server.base}/developers/apps/${clientId}/auth`);
    const body = await page.locator('main').textContent();
    assert.ok(!body.includes(secret), 'the Auth tab must not show the whole secret again');
    assert.ok(body.includes('https://browser.example/cb'));
    await screenshot(page, 'portal-auth-tab');

    // And My apps lists it.
    await page.goto(`${server.base}/developers/apps`);
    assert.equal(await page.locator('table tbody tr', { hasText: 'Browser App' }).count(), 1);
  });

  it('adds the open product "Share on LinkedIn" at once', async () => {
    await page.goto(`${server.base}/developers/apps/${clientId}/settings`);
    await screenshot(page, 'portal-settings-tab');
    await clickAndWait(page, page.locator('nav.tabs').getByRole('link', { name: 'Products' }));
    assert.equal(page.url(), productsUrl());
    assert.equal(await page.locator('nav.tabs a.on').textContent(), 'Products');

    const share = productRow(page, SHARE);
    assert.equal(await share.count(), 1);
    assert.equal((await share.locator('.badge').textContent()).trim(), 'Available');
    await clickAndWait(page, share.getByRole('button', { name: 'Add product' }));
    assert.deepEqual(await notices(page), ['Product added.']);
    assert.equal((await productRow(page, SHARE).locator('.badge').textContent()).trim(), 'Approved');
    assert.equal(await productRow(page, SHARE).getByRole('button', { name: 'Remove' }).count(), 1);
  });

  it('requests the partner programs MDP and Lead Sync, which wait for review', async () => {
    for (const name of [MDP, LEAD_SYNC]) {
      const row = productRow(page, name);
      assert.equal((await row.locator('.badge').textContent()).trim(), 'Available', name);
      await clickAndWait(page, row.getByRole('button', { name: 'Request access' }));
      assert.deepEqual(await notices(page), ['Access requested. A platform admin will review it.']);
      assert.equal((await productRow(page, name).locator('.badge').textContent()).trim(), 'Requested (in review)', name);
    }
  });

  it('refuses "Audiences" before a prerequisite is approved', async () => {
    const audiences = productRow(page, 'Audiences');
    assert.match(await audiences.textContent(), /Requires an approved/);
    await clickAndWait(page, audiences.getByRole('button', { name: 'Request access' }));
    const shown = await page.locator('.notice.error').allTextContents();
    assert.equal(shown.length, 1, `expected one error notice, got ${JSON.stringify(await notices(page))}`);
    assert.ok(shown[0].trim().length > 0);
    assert.equal((await productRow(page, 'Audiences').locator('.badge').textContent()).trim(), 'Available');
    assert.equal(await page.locator('.notice.ok').count(), 0);
  });

  it('shows "Compliance" as Closed with no request button', async () => {
    const compliance = productRow(page, 'Compliance');
    assert.equal(await compliance.count(), 1);
    assert.equal((await compliance.locator('.badge').textContent()).trim(), 'Closed');
    assert.equal(await compliance.getByRole('button').count(), 0);
    assert.match(await compliance.textContent(), /Cannot be requested/);
    await screenshot(page, 'portal-products-tab');
  });

  it('keeps the review queue from a developer who is not a platform admin', async () => {
    const res = await page.goto(`${server.base}/developers/admin/review`);
    assert.equal(res.status(), 403);
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0);
  });

  it('lets the platform admin approve the MDP request from the review queue', async () => {
    await page.goto(productsUrl());
    await signOut(page);
    assert.equal(new URL(page.url()).pathname, '/login');

    const pending = server.cli('review', 'list');
    const list = Array.isArray(pending) ? pending : pending.requests || pending.pending || [];
    assert.ok(
      list.some((r) => r.client_id === clientId && r.program_id === 'marketing-developer-platform'),
      `CLI review list: ${JSON.stringify(pending)}`,
    );

    await page.goto(`${server.base}/developers/admin/review`);
    assert.equal(new URL(page.url()).pathname, '/login');
    await signIn(page, DEMO.admin);
    assert.equal(new URL(page.url()).pathname, '/developers/admin/review');
    assert.equal(await page.locator('nav.main a', { hasText: 'Review queue' }).count(), 1);

    const card = page.locator('div.card', { has: page.locator('h2', { hasText: `Browser App → ${MDP}` }) });
    assert.equal(await card.count(), 1, `cards: ${JSON.stringify(await page.locator('div.card h2').allTextContents())}`);
    assert.match(await card.textContent(), new RegExp(clientId));
    assert.equal(await card.locator('select[name=reason]').count(), 1);
    assert.equal(await card.locator('input[name=reason_text]').count(), 1);
    await screenshot(page, 'portal-review-queue');

    await clickAndWait(page, card.getByRole('button', { name: 'Approve' }));
    assert.deepEqual(await notices(page), [`Approved Marketing Developer Platform (MDP) for app ${clientId}.`]);
    assert.equal(
      await page.locator('div.card', { has: page.locator('h2', { hasText: `Browser App → ${MDP}` }) }).count(),
      0,
    );

    // A denial needs a reason: without one the request stays in the queue.
    const lead = page.locator('div.card', { has: page.locator('h2', { hasText: `Browser App → ${LEAD_SYNC}` }) });
    assert.equal(await lead.count(), 1);
    await clickAndWait(page, lead.getByRole('button', { name: 'Deny' }));
    const refused = await page.locator('.notice.error').allTextContents();
    assert.equal(refused.length, 1, JSON.stringify(await notices(page)));
    assert.match(refused[0], /reason/);
    assert.equal(await lead.count(), 1);

    await lead.locator('select[name=reason]').selectOption('Unapproved Use Case');
    await clickAndWait(page, lead.getByRole('button', { name: 'Deny' }));
    assert.deepEqual(await notices(page), [`Denied Lead Sync for app ${clientId}.`]);
    assert.equal(await lead.count(), 0);
    await screenshot(page, 'portal-review-queue-after');
  });

  it("shows the developer the approved product on the app's Products tab", async () => {
    await signOut(page);
    await page.goto(productsUrl());
    await signIn(page, DEMO.developer);
    assert.equal(page.url(), productsUrl());
    assert.equal((await productRow(page, MDP).locator('.badge').textContent()).trim(), 'Approved');
    assert.equal((await productRow(page, SHARE).locator('.badge').textContent()).trim(), 'Approved');
    // The denied program shows its reason and can be requested again.
    const lead = productRow(page, LEAD_SYNC);
    assert.equal((await lead.locator('.badge').textContent()).trim(), 'Denied');
    assert.match(await lead.textContent(), /Unapproved Use Case/);
    assert.equal(await lead.getByRole('button', { name: 'Request access' }).count(), 1);
    await screenshot(page, 'portal-products-approved');

    // With MDP approved, Audiences' prerequisite is met and it can be requested.
    await clickAndWait(page, productRow(page, 'Audiences').getByRole('button', { name: 'Request access' }));
    assert.deepEqual(await notices(page), ['Access requested. A platform admin will review it.']);
    assert.equal((await productRow(page, 'Audiences').locator('.badge').textContent()).trim(), 'Requested (in review)');

    const shown = server.cli('app', 'show', clientId);
    const status = Object.fromEntries(shown.products.map((p) => [p.program_id, p.status]));
    assert.equal(status['marketing-developer-platform'], 'Approved');
    assert.equal(status['share-on-linkedin'], 'Approved');
    assert.equal(status['lead-sync'], 'Denied');
    assert.equal(status.compliance, 'Closed');
    assert.equal(status.audiences, 'Requested');
  });

  it(
    'pages log no Content-Security-Policy errors in the browser console',
    () => {
      const csp = consoleErrors.filter((e) => /Content Security Policy/.test(e.text));
      assert.deepEqual([...new Set(csp.map((e) => e.text))], []);
    },
  );
});
