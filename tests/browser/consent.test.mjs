// The authorization flow as a member lives it in a real browser: sign-in, consent, the code at
// the client's callback, the token exchange, consent remembered, Permitted services, cancelling,
// and the consent page refusing to be framed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  DEMO,
  CALLBACK_HTML,
  startServer,
  launchBrowser,
  interceptor,
  signIn,
  signOut,
  clickAndWait,
  screenshot,
  authorizationUrl,
  queryOf,
  randomState,
  postForm,
  notices,
} from './lib.mjs';

const SCOPE = 'openid profile w_member_social';
const CALLBACK_ORIGIN = 'http://127.0.0.1:8080/';

describe('authorization, consent and Permitted services', { timeout: 300_000 }, () => {
  let server;
  let browser;
  let page;
  let callbacks;
  let accessToken;
  let firstToken;
  /** Where the browser is left after "Remove access" (reported; a POST result, not a redirect). */
  let revokeUrl;
  /** Every document response of the main frame, in order. */
  const documents = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = browser.page;
    callbacks = await interceptor(page);
    await callbacks.add(CALLBACK_ORIGIN, CALLBACK_HTML);
    page.on('response', (res) => {
      if (res.request().resourceType() === 'document' && res.frame() === page.mainFrame()) documents.push(res);
    });
  });

  after(async () => {
    if (revokeUrl) console.error(`# after "Remove access" the address bar shows ${revokeUrl}`);
    await browser?.close();
    await server?.stop();
  });

  // The authorization endpoint, or where a pending request resumes after sign-in.
  const isAuthorization = (url) =>
    ['/oauth/v2/authorization', '/oauth/v2/authorization/continue'].includes(new URL(url).pathname);
  const atCallback = (url) => url.startsWith(DEMO.callback);

  async function exchange(code) {
    return postForm(server, '/oauth/v2/accessToken', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: DEMO.callback,
      client_id: DEMO.clientId,
      client_secret: DEMO.clientSecret,
    });
  }

  async function introspect(token) {
    const res = await postForm(server, '/oauth/v2/introspectToken', {
      token,
      client_id: DEMO.clientId,
      client_secret: DEMO.clientSecret,
    });
    assert.equal(res.status, 200, res.text);
    return res.json.active;
  }

  let firstState;
  it('sends a signed-out member to sign-in, naming the app', async () => {
    const state = randomState();
    firstState = state;
    await page.goto(authorizationUrl(server.base, { scope: SCOPE, state }));
    const url = new URL(page.url());
    assert.equal(url.pathname, '/login');
    // The request stays on the server: the way back names it by its pending id only.
    const next = new URL(url.searchParams.get('next'), server.base);
    assert.equal(next.pathname, '/oauth/v2/authorization/continue');
    assert.deepEqual([...next.searchParams.keys()], ['request']);
    assert.match(next.searchParams.get('request'), /^PR[A-Za-z0-9_-]{43}$/);
    assert.match(await page.locator('p.lede').textContent(), /to continue to Demo App/);
    assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 1);
    await screenshot(page, 'consent-sign-in');
  });

  it('shows the consent page after sign-in, with one line per permission', async () => {
    const before = documents.length;
    await signIn(page, DEMO.member);
    assert.ok(isAuthorization(page.url()), page.url());
    await page.getByRole('heading', { name: DEMO.appName, level: 1 }).waitFor();
    const lines = await page.locator('ul.consents li').allTextContents();
    assert.equal(lines.length, 3, JSON.stringify(lines));
    assert.ok(lines.every((l) => l.trim().length > 0));
    assert.match(await page.locator('main').textContent(), /Signed in as/);
    assert.equal(await page.getByRole('button', { name: 'Allow' }).count(), 1);
    assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 1);

    const consentDoc = documents.slice(before).find((r) => isAuthorization(r.url()) && r.status() === 200);
    assert.ok(consentDoc, 'the consent page response was seen');
    const h = await consentDoc.allHeaders();
    assert.equal(h['x-frame-options']?.toUpperCase(), 'DENY');
    assert.match(h['content-security-policy'] || '', /frame-ancestors 'none'/);
    assert.match(h['cache-control'] || '', /no-store/);
    await screenshot(page, 'consent-page');
  });

  let firstCode;
  it('Allow sends the browser to the callback with code, state and iss', async () => {
    const state = firstState;
    await clickAndWait(page, page.getByRole('button', { name: 'Allow' }));
    assert.ok(atCallback(page.url()), page.url());
    const q = queryOf(page.url());
    assert.ok(q.code, 'code');
    assert.equal(q.state, state);
    assert.equal(q.iss, server.issuer);
    assert.equal(q.error, undefined);
    assert.equal(await page.locator('h1').textContent(), 'Callback received');
    firstCode = q.code;
  });

  it('exchanges the code for an access token at the token endpoint', async () => {
    const res = await exchange(firstCode);
    assert.equal(res.status, 200, res.text);
    assert.equal(typeof res.json.access_token, 'string');
    assert.ok(res.json.access_token.length > 0);
    assert.ok(res.json.expires_in > 0, res.text);
    firstToken = res.json.access_token;
    assert.equal(await introspect(firstToken), true);
  });

  it('skips consent on a second authorization with the same scopes', async () => {
    const state = randomState();
    const before = documents.length;
    const res = await page.goto(authorizationUrl(server.base, { scope: SCOPE, state }));
    assert.ok(atCallback(page.url()), page.url());
    const q = queryOf(page.url());
    assert.ok(q.code);
    assert.notEqual(q.code, firstCode);
    assert.equal(q.state, state);
    assert.equal(q.iss, server.issuer);
    // Straight from the authorization endpoint to the callback: no consent page in between.
    const from = res.request().redirectedFrom();
    assert.ok(from && isAuthorization(from.url()), 'the callback was reached by a redirect from the authorization URL');
    assert.ok(!documents.slice(before).some((r) => isAuthorization(r.url()) && r.status() === 200), 'no consent page was shown');

    const second = await exchange(q.code);
    assert.equal(second.status, 200, second.text);
    accessToken = second.json.access_token;
  });

  it('refuses a replayed code and revokes the tokens issued from it', async () => {
    const again = await exchange(firstCode);
    assert.equal(again.status, 400, again.text);
    assert.equal(again.json?.error, 'invalid_grant', again.text);
    assert.equal(await introspect(firstToken), false, 'the first code\'s token is revoked');
    assert.equal(await introspect(accessToken), true, 'the second code\'s token still works');
  });

  it('lists Demo App on Permitted services and removes its access', async () => {
    await page.goto(`${server.base}/psettings/permitted-services`);
    const card = page.locator('div.card', { has: page.locator('h2', { hasText: DEMO.appName }) });
    assert.equal(await card.count(), 1);
    assert.equal(await card.locator('ul.consents li').count(), 3);
    await screenshot(page, 'permitted-services');

    await clickAndWait(page, card.getByRole('button', { name: `Remove access for ${DEMO.appName}` }));
    assert.deepEqual(await notices(page), ["Access removed. The app's tokens for your account no longer work."]);
    revokeUrl = page.url();
    assert.equal(await page.locator('div.card', { has: page.locator('h2', { hasText: DEMO.appName }) }).count(), 0);
    await screenshot(page, 'permitted-services-removed');

    assert.equal(await introspect(accessToken), false, 'the token was revoked with the grant');
  });

  it('asks for consent again after access was removed', async () => {
    const state = randomState();
    await page.goto(authorizationUrl(server.base, { scope: SCOPE, state }));
    assert.ok(isAuthorization(page.url()), page.url());
    assert.equal(await page.locator('ul.consents li').count(), 3);
  });

  it('Cancel on the consent page redirects with error=access_denied', async () => {
    const state = new URL(page.url()).searchParams.get('state');
    await clickAndWait(page, page.locator('form').getByRole('button', { name: 'Cancel' }));
    assert.ok(atCallback(page.url()), page.url());
    const q = queryOf(page.url());
    assert.equal(q.error, 'access_denied'); // LinkedIn mode: user_cancelled_authorize
    assert.ok(q.error_description);
    assert.equal(q.state, state);
    assert.equal(q.iss, server.issuer);
    assert.equal(q.code, undefined);
  });

  it('the consent page cannot be framed, same-origin or cross-site', async () => {
    const target = authorizationUrl(server.base, { scope: SCOPE, state: randomState() });
    const framing = `<!doctype html><title>framing probe</title><h1>Framing probe</h1><iframe id="f" src="${target.replace(/&/g, '&amp;')}" width="800" height="500"></iframe>`;
    // 1. A page on scopegate's own origin (served by the test, so without scopegate's headers):
    //    the session cookie goes with the frame's request and the server renders the consent page.
    const sameOrigin = `${server.base}/__framing-probe`;
    await callbacks.add(sameOrigin, framing);
    // 2. An attacker's page on another site: a real loopback HTTP server (an intercepted
    //    response would trip Chromium's local-network-access checks before the framing rules).
    const attacker = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(framing);
    });
    await new Promise((r) => attacker.listen(0, '127.0.0.1', r));
    const crossSite = `http://127.0.0.1:${attacker.address().port}/`;
    try {
      for (const probe of [sameOrigin, crossSite]) {
        const framed = [];
        const failed = [];
        const onResponse = (r) => {
          if (r.frame() !== page.mainFrame()) framed.push(r);
        };
        const onFailed = (r) => {
          if (r.frame() !== page.mainFrame()) failed.push(r);
        };
        page.on('response', onResponse);
        page.on('requestfailed', onFailed);
        await page.goto(probe, { waitUntil: 'load' });
        await page.waitForTimeout(300);
        page.off('response', onResponse);
        page.off('requestfailed', onFailed);

        assert.ok(framed.length >= 1, `${probe}: the frame asked scopegate for the consent URL`);
        assert.ok(isAuthorization(framed[0].url()), framed[0].url());
        // The document the frame would have shown: the consent page (signed in, same origin) or
        // the sign-in page it redirects to (no cookie across sites). Neither may be framed.
        const last = framed[framed.length - 1];
        const h = await last.allHeaders();
        assert.equal(h['x-frame-options']?.toUpperCase(), 'DENY', `${probe} -> ${last.url()}`);
        assert.match(h['content-security-policy'] || '', /frame-ancestors 'none'/, probe);
        if (probe === sameOrigin) {
          assert.equal(last.status(), 200);
          assert.ok(isAuthorization(last.url()), `same origin: the consent page itself was served (${last.url()})`);
        }
        assert.ok(
          failed.some((r) => /ERR_BLOCKED_BY_RESPONSE/.test(r.failure()?.errorText || '')),
          `${probe}: Chromium blocked the framed response (${failed.map((r) => r.failure()?.errorText).join(', ')})`,
        );
        const rendered = await page.evaluate(() => {
          const doc = document.getElementById('f').contentDocument;
          if (!doc) return null; // an error page of another origin: blocked
          return doc.body ? doc.body.innerText : '';
        });
        assert.ok(rendered === null || !/Allow|Sign in/.test(rendered), `${probe}: the frame shows ${JSON.stringify(rendered)}`);
        const child = page.frames().find((f) => f !== page.mainFrame());
        assert.ok(child, 'the iframe exists');
        assert.equal(await child.locator('form').count().catch(() => 0), 0, `${probe}: no form in the frame (${child.url()})`);
        await screenshot(page, probe === sameOrigin ? 'consent-framing-same-origin' : 'consent-framing-cross-site');
      }
    } finally {
      attacker.close();
    }
  });

  it('Cancel on the sign-in page redirects with error=access_denied', async () => {
    await page.goto(`${server.base}/psettings/permitted-services`);
    await signOut(page);
    const state = randomState();
    await page.goto(authorizationUrl(server.base, { scope: SCOPE, state }));
    assert.equal(new URL(page.url()).pathname, '/login');
    await clickAndWait(page, page.getByRole('button', { name: 'Cancel' }));
    assert.ok(atCallback(page.url()), page.url());
    const q = queryOf(page.url());
    assert.equal(q.error, 'access_denied'); // LinkedIn mode: user_cancelled_login
    assert.ok(q.error_description);
    assert.equal(q.state, state);
    assert.equal(q.iss, server.issuer);
    assert.equal(q.code, undefined);
  });

  it('shows errors for an unknown client or an unregistered redirect URL on scopegate, never redirecting', async () => {
    const cases = [
      { name: 'unknown-client', url: authorizationUrl(server.base, { scope: SCOPE, state: 'x', clientId: 'nosuchapp000000' }), status: 401, title: /Client_id doesn't match/ },
      { name: 'bad-redirect', url: authorizationUrl(server.base, { scope: SCOPE, state: 'x', redirectUri: 'https://evil.example/cb' }), status: 401, title: /Redirect_uri doesn't match/ },
    ];
    for (const c of cases) {
      const served = callbacks.seen.length;
      const res = await page.goto(c.url);
      assert.equal(res.status(), c.status, c.name);
      assert.equal(new URL(page.url()).origin, server.base, `${c.name}: stays on scopegate`);
      assert.match(await page.locator('h1').textContent(), c.title);
      assert.equal(callbacks.seen.length, served, `${c.name}: nothing reached a callback`);
      await screenshot(page, `consent-error-${c.name}`);
    }
  });

  it(
    'Allow works for an IPv6 loopback redirect URL (http://[::1]:PORT)',
    async () => {
      const v6 = 'http://[::1]:8080/callback';
      server.cli('app', 'redirect-uri', 'add', DEMO.clientId, v6);
      await callbacks.add('http://[::1]:8080/', CALLBACK_HTML);
      // Precondition: the test can serve the [::1] callback (so a failure below is the server's).
      await page.goto(`${v6}?probe=1`);
      assert.equal(await page.locator('h1').textContent(), 'Callback received');
      const cspErrors = [];
      const onConsole = (m) => {
        if (/Content Security Policy/.test(m.text()) && /form-action/.test(m.text())) cspErrors.push(m.text());
      };
      page.on('console', onConsole);
      const state = randomState();
      await page.goto(authorizationUrl(server.base, { scope: 'openid profile', state, redirectUri: v6 }));
      if (new URL(page.url()).pathname === '/login') await signIn(page, DEMO.member);
      assert.ok(isAuthorization(page.url()), page.url());
      await page.getByRole('button', { name: 'Allow' }).click();
      try {
        await page.waitForURL((u) => u.href.startsWith(v6), { timeout: 5000 });
      } finally {
        page.off('console', onConsole);
      }
      assert.deepEqual(cspErrors, []);
      assert.equal(queryOf(page.url()).state, state);
    },
  );
});
