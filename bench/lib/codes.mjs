// Pre-generates authorization codes for the code-redemption run of bench/run by driving the
// server's real authorization flow as a member's browser would: GET the authorization URL,
// sign in on the first form, answer the consent form, and read the code from the redirect to
// the client. The first code is redeemed here, so the member holds a live grant (scopegate then
// skips consent, oidc-provider finds the existing grant) and its token answer is written out
// for the refresh and userinfo runs; the other codes go to CODES_FILE, one a line.
//
// Usage: node codes.mjs BASE AUTH_PATH TOKEN_PATH COUNT CODES_FILE TOKEN_FILE
// Environment: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI, BENCH_SCOPE,
//              BENCH_LOGIN (email), BENCH_PASSWORD, BENCH_CODES_CONCURRENCY (default 8).
// Exit status: 0 when COUNT codes were written, 1 otherwise (with the reason on stderr).
import { writeFileSync } from 'node:fs';
import https from 'node:https';

const [base, authPath, tokenPath, countArg, codesFile, tokenFile] = process.argv.slice(2);
const env = process.env;
const count = Number(countArg);
const concurrency = Number(env.BENCH_CODES_CONCURRENCY || 8);
const client = {
  id: env.BENCH_CLIENT_ID,
  secret: env.BENCH_CLIENT_SECRET,
  redirect: env.BENCH_REDIRECT_URI,
  scope: env.BENCH_SCOPE,
};
const login = { email: env.BENCH_LOGIN, password: env.BENCH_PASSWORD };
const origin = new URL(base).origin;
// The servers use throw-away self-signed certificates on loopback.
const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, rejectUnauthorized: false });
const jar = new Map();

function fail(message) {
  console.error(`codes.mjs: ${message}`);
  process.exit(1);
}

function request(method, url, body, browser = true) {
  const u = new URL(url, base);
  const headers = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = Buffer.byteLength(body);
    // scopegate refuses cross-site form posts: a browser sends its own origin. A client's
    // back-channel token request sends none (oidc-provider would treat it as CORS).
    if (browser) headers.origin = origin;
  }
  return new Promise((resolve, reject) => {
    const req = https.request(u, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        for (const c of res.headers['set-cookie'] ?? []) {
          const [pair] = c.split(';');
          const i = pair.indexOf('=');
          jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
        }
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(), url: u.href });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const attr = (tag, name) => tag.match(new RegExp(`\\s${name}\\s*=\\s*"([^"]*)"`, 'i'))?.[1];
const unescape = (s) => s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#x27;|&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');

// The first POST form of a page, filled in: hidden inputs kept, the login and password fields
// set, and the button that signs in or allows, when buttons carry a value.
const GO = /^(allow|signin|sign-in|accept|confirm)$/i;
function fillForm(html) {
  // The form that signs in or allows: a sign-out form in the page's header is not it.
  const forms = [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)]
    .filter(([f]) => !/action\s*=\s*"[^"]*(logout|abort)/i.test(f.match(/<form\b[^>]*>/i)[0]));
  const m = forms.find(([f]) => [...f.matchAll(/<button\b[^>]*>/gi)].some(([b]) => GO.test(attr(b, 'value') ?? '')))
    ?? forms.find(([f]) => /type\s*=\s*"password"/i.test(f))
    ?? forms.at(-1);
  if (!m) return null;
  const action = unescape(attr(m[0].match(/<form\b[^>]*>/i)[0], 'action') ?? '');
  const fields = new URLSearchParams();
  for (const [tag] of m[0].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(tag, 'name');
    if (!name) continue;
    const type = (attr(tag, 'type') ?? 'text').toLowerCase();
    if (type === 'password') fields.set(name, login.password);
    else if (type === 'hidden') fields.set(name, unescape(attr(tag, 'value') ?? ''));
    else if (/^(email|login|username)$/i.test(name)) fields.set(name, login.email);
  }
  const buttons = [...m[0].matchAll(/<button\b[^>]*>/gi)]
    .map(([tag]) => [attr(tag, 'name'), attr(tag, 'value')])
    .filter(([n]) => n);
  const pick = buttons.find(([, v]) => GO.test(v ?? '')) ?? buttons[0];
  if (pick) fields.set(pick[0], pick[1] ?? '');
  return { action, body: fields.toString() };
}

// One authorization, following the server's own redirects and forms until it sends the
// browser to the client's redirect URI; returns the code.
async function authorize(state) {
  const q = new URLSearchParams({ response_type: 'code', client_id: client.id, redirect_uri: client.redirect, scope: client.scope, state });
  let res = await request('GET', `${authPath}?${q}`);
  for (let step = 0; step < 12; step += 1) {
    if (env.BENCH_CODES_DEBUG) console.error(res.status, res.url, res.headers.location ?? '', res.body.slice(0, 1500));
    if (res.status >= 300 && res.status < 400) {
      const target = new URL(res.headers.location, res.url);
      if (target.href.startsWith(client.redirect)) {
        const code = target.searchParams.get('code');
        if (!code) fail(`redirected to the client without a code: ${target.href}`);
        return code;
      }
      res = await request('GET', target.href);
      continue;
    }
    if (res.status !== 200) fail(`HTTP ${res.status} at ${res.url}: ${res.body.slice(0, 400)}`);
    const form = fillForm(res.body);
    if (!form) fail(`no form at ${res.url}: ${res.body.slice(0, 400)}`);
    res = await request('POST', new URL(form.action, res.url).href, form.body);
  }
  return fail('no redirect to the client after 12 steps');
}

const first = await authorize('bench-0');
const redeemed = await request('POST', tokenPath, new URLSearchParams({
  grant_type: 'authorization_code', code: first, redirect_uri: client.redirect, client_id: client.id, client_secret: client.secret,
}).toString(), false);
if (redeemed.status !== 200) fail(`redeeming the first code: HTTP ${redeemed.status} ${redeemed.body.slice(0, 400)}`);
writeFileSync(tokenFile, redeemed.body);

const codes = new Array(count);
let next = 0;
async function worker() {
  while (next < count) {
    const i = next;
    next += 1;
    codes[i] = await authorize(`bench-${i + 1}`);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
writeFileSync(codesFile, `${codes.join('\n')}\n`);
agent.destroy();
