// Helpers for scopegate's third-party relying-party tests: a scopegate server in a fresh data
// folder, the CLI on the same store, a fetch that trusts only the server's own self-signed
// certificate (TLS is verified, never switched off), and a cookie-carrying "browser" made of plain
// HTTP requests that walks the sign-in and consent pages the way a person's browser would.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, REPO_ROOT, launchServer, serverEnv, sleep, storeArgs, waitForBinary } from '../lib/scopegate.mjs';

export { BIN, REPO_ROOT, sleep, waitForBinary };

export const HERE = path.dirname(fileURLToPath(import.meta.url));

export const DEMO = Object.freeze({
  password: 'scopegate-demo',
  member: 'test-member@scopegate.local',
  developer: 'developer@scopegate.local',
  clientId: 'demoapp0000001',
  clientSecret: 'demo-secret-not-for-production',
  callback: 'http://127.0.0.1:8080/callback',
});


/**
 * Starts `scopegate serve --demo` on an ephemeral port in a fresh temporary data folder.
 * Returns { base, issuer, dir, cert, ca, fetch, cli(...args), stop() }.
 */
export async function startServer({ timeoutMs = 90_000 } = {}) {
  const started = await launchServer('scopegate-oidc-', { timeoutMs });
  const ca = fs.readFileSync(started.cert);
  return {
    ...started,
    ca,
    /** A Fetch API function that trusts this server's certificate (and only it). */
    fetch: caFetch(ca),
    /** Runs the CLI on the server's store with --json and parses its output. */
    cli: (...args) => cli(started.dir, ...args),
  };
}

/** `scopegate --data-dir DIR --database-url sqlite://DIR/scopegate.db --json ARGS...`, parsed. */
export function cli(dir, ...args) {
  return new Promise((resolve, reject) => {
    execFile(
      BIN,
      [...storeArgs(dir), '--json', ...args],
      { env: serverEnv(), encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`scopegate ${args.join(' ')} failed: ${err.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          return;
        }
        try {
          resolve(stdout.trim() ? JSON.parse(stdout) : null);
        } catch (e) {
          reject(new Error(`scopegate ${args.join(' ')} printed no JSON: ${e.message}\n${stdout}`));
        }
      },
    );
  });
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A Fetch API-compatible function over node:https whose only trust anchor is `ca`: certificate
 * and host name are verified as usual. It never follows redirects (the callers use
 * redirect: 'manual' and look at Location themselves). Suitable as openid-client's customFetch.
 */
export function caFetch(ca) {
  const agent = new https.Agent({ ca, keepAlive: false });
  return async function fetchWithCa(resource, init = {}) {
    const url = new URL(resource instanceof Request ? resource.url : String(resource));
    if (url.protocol !== 'https:') throw new TypeError(`caFetch: refusing a non-HTTPS URL: ${url}`);
    const method = (init.method || 'GET').toUpperCase();
    const headers = new Headers(init.headers || {});
    let body = init.body ?? null;
    if (body instanceof URLSearchParams) {
      if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      body = Buffer.from(body.toString());
    } else if (typeof body === 'string') {
      if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
      body = Buffer.from(body);
    } else if (body instanceof ArrayBuffer) {
      body = Buffer.from(body);
    } else if (ArrayBuffer.isView(body)) {
      body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    } else if (body !== null) {
      throw new TypeError('caFetch: unsupported body type');
    }
    if (body !== null) headers.set('content-length', String(body.length));
    const outgoing = {};
    for (const [k, v] of headers) outgoing[k] = v;
    const signal = init.signal;
    return await new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
        return;
      }
      const req = https.request(url, { method, headers: outgoing, agent, timeout: 60_000 }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const pairs = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
          const buf = Buffer.concat(chunks);
          const response = new Response(NULL_BODY_STATUS.has(res.statusCode) ? null : buf, {
            status: res.statusCode,
            statusText: res.statusMessage || '',
            headers: new Headers(pairs),
          });
          Object.defineProperty(response, 'url', { value: url.href });
          resolve(response);
        });
      });
      const onAbort = () => req.destroy(signal.reason ?? new DOMException('aborted', 'AbortError'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  };
}

/** Undoes HTML escaping in an attribute value or text. */
export function htmlUnescape(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/g, (_, e) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    if (e[1] === 'x' || e[1] === 'X') return String.fromCodePoint(parseInt(e.slice(2), 16));
    return String.fromCodePoint(parseInt(e.slice(1), 10));
  });
}

function attributes(tag) {
  const attrs = {};
  for (const m of tag.matchAll(/([^\s=<>/"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g)) {
    const name = m[1].toLowerCase();
    if (name === 'input' || name === 'form' || name === 'button') continue;
    attrs[name] = htmlUnescape(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/**
 * The forms of an HTML page: [{ method, action, fields: {name: value} (hidden and other inputs),
 * buttons: [{name, value}] }].
 */
export function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const fa = attributes(m[1]);
    const fields = {};
    for (const i of m[2].matchAll(/<input\b[^>]*>/gi)) {
      const a = attributes(i[0]);
      if (a.name !== undefined) fields[a.name] = a.value ?? '';
    }
    const buttons = [];
    for (const b of m[2].matchAll(/<button\b[^>]*>/gi)) {
      const a = attributes(b[0]);
      if (a.name !== undefined) buttons.push({ name: a.name, value: a.value ?? '' });
    }
    forms.push({ method: (fa.method || 'get').toLowerCase(), action: fa.action ?? '', fields, buttons });
  }
  return forms;
}

/**
 * A cookie jar for one origin, with the rules a browser applies to the cookie name prefixes:
 * a `__Host-` cookie is kept only if it is Secure, has Path=/ and no Domain; a `__Secure-` one
 * only if it is Secure. Every Set-Cookie seen is recorded in `log` with its attributes.
 */
export class CookieJar {
  constructor() {
    this.cookies = new Map();
    this.log = [];
  }

  store(response, requestUrl) {
    const secureOrigin = new URL(requestUrl).protocol === 'https:';
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...rest] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const attrs = {};
      for (const a of rest) {
        const [k, ...v] = a.trim().split('=');
        if (k) attrs[k.toLowerCase()] = v.length ? v.join('=') : true;
      }
      const entry = { name, value, attrs, raw: line, accepted: true };
      this.log.push(entry);
      if (attrs.secure && !secureOrigin) entry.accepted = false;
      if (name.startsWith('__Secure-') && !attrs.secure) entry.accepted = false;
      if (name.startsWith('__Host-') && (!attrs.secure || attrs.path !== '/' || attrs.domain !== undefined)) {
        entry.accepted = false;
      }
      if (!entry.accepted) continue;
      const maxAge = attrs['max-age'] !== undefined ? Number(attrs['max-age']) : undefined;
      if (maxAge !== undefined && maxAge <= 0) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  has(name) {
    return this.cookies.has(name);
  }
}

/**
 * A "browser" over plain HTTP requests: it carries cookies, never follows redirects by itself
 * (each hop is a separate request, like a browser's navigations) and records every hop.
 */
export class Browser {
  constructor(fetchFn) {
    this.fetch = fetchFn;
    this.jar = new CookieJar();
    this.hops = [];
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = { Accept: 'text/html,application/xhtml+xml' };
    const cookie = this.jar.header();
    if (cookie) headers.Cookie = cookie;
    let body;
    if (form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await this.fetch(url, { method, headers, body, redirect: 'manual' });
    this.jar.store(res, url);
    const text = await res.text();
    const location = res.headers.get('location');
    const hop = {
      method,
      url: String(url),
      status: res.status,
      location: location === null ? null : new URL(location, url).href,
      headers: res.headers,
      text,
    };
    this.hops.push(hop);
    return hop;
  }

  /** A readable summary of the hops so far, for assertion messages. */
  trace() {
    return this.hops
      .map((h) => `${h.method} ${h.url} -> ${h.status}${h.location ? ` Location: ${h.location}` : ''}${h.status >= 400 ? `\n    ${h.text.slice(0, 400).replace(/\s+/g, ' ')}` : ''}`)
      .join('\n');
  }
}

/**
 * Drives the server-rendered part of an authorization: from the authorization URL through
 * sign-in (if the browser has no session) and consent (if the server asks) to the redirect to the
 * client's redirect URL, which is not followed. Returns { callback: URL, browser, sawLogin,
 * sawConsent }.
 *   pauseAfterSignInMs: wait this long after signing in before going on, as a person reading the
 *   consent page would (makes sign-in time and consent time differ).
 */
export async function authorizeInBrowser(authUrl, {
  browser,
  email = DEMO.member,
  password = DEMO.password,
  redirectUri = DEMO.callback,
  pauseAfterSignInMs = 0,
  maxHops = 12,
}) {
  const trail = () => `\nhops:\n${browser.trace()}`;
  let sawLogin = false;
  let sawConsent = false;
  let hop = await browser.request(String(authUrl));
  for (let i = 0; i < maxHops; i++) {
    if ([301, 302, 303, 307, 308].includes(hop.status)) {
      if (!hop.location) throw new Error(`redirect without Location${trail()}`);
      if (hop.location.startsWith(redirectUri)) {
        return { callback: new URL(hop.location), browser, sawLogin, sawConsent };
      }
      hop = await browser.request(hop.location);
      continue;
    }
    if (hop.status !== 200) throw new Error(`unexpected ${hop.status} during the authorization${trail()}`);
    const page = new URL(hop.url);
    const forms = parseForms(hop.text);
    const login = forms.find((f) => f.method === 'post' && f.action === '/login');
    const consent = forms.find((f) => f.method === 'post' && f.action === '/oauth/v2/authorization/consent');
    if (page.pathname === '/login' && login) {
      if (sawLogin) throw new Error(`the sign-in page came back after signing in${trail()}`);
      sawLogin = true;
      if (!browser.jar.has('__Host-sg_csrf')) throw new Error(`the sign-in page set no usable __Host-sg_csrf cookie${trail()}`);
      for (const f of ['csrf', 'next']) {
        if (!(f in login.fields)) throw new Error(`the sign-in form has no hidden ${f} input${trail()}`);
      }
      hop = await browser.request(new URL('/login', page).href, {
        method: 'POST',
        form: { csrf: login.fields.csrf, next: login.fields.next, email, password, action: 'signin' },
      });
      if (hop.status !== 303) throw new Error(`POST /login answered ${hop.status}, expected 303${trail()}`);
      if (!browser.jar.has('__Host-sg_session')) throw new Error(`signing in set no usable __Host-sg_session cookie${trail()}`);
      if (pauseAfterSignInMs) await sleep(pauseAfterSignInMs);
      continue;
    }
    if (consent) {
      if (sawConsent) throw new Error(`the consent page came back after allowing${trail()}`);
      sawConsent = true;
      // The consent form carries the CSRF token and the pending request's id, nothing else.
      for (const f of ['csrf', 'request']) {
        if (!(f in consent.fields)) throw new Error(`the consent form has no hidden ${f} input${trail()}`);
      }
      if (!consent.buttons.some((b) => b.name === 'action' && b.value === 'allow')) {
        throw new Error(`the consent form has no Allow button${trail()}`);
      }
      hop = await browser.request(new URL(consent.action, page).href, {
        method: 'POST',
        form: { csrf: consent.fields.csrf, request: consent.fields.request, action: 'allow' },
      });
      continue;
    }
    throw new Error(`a page with neither the sign-in nor the consent form: ${hop.url}${trail()}`);
  }
  throw new Error(`no redirect to ${redirectUri} after ${maxHops} hops${trail()}`);
}

/** The decoded header and payload of a JWS compact serialization (no verification). */
export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
  };
}
