// Comparison server for bench/run: panva's oidc-provider behind node's
// https.createServer on loopback, configured for the flows scopegate is measured
// on: client-credentials issuance, token introspection, and the 3-legged code
// flow (authorization code redemption, refresh, userinfo) with the library's
// development login and consent pages (devInteractions: any login, any
// password), which bench/lib/codes.mjs drives to pre-generate codes.
//
// Environment:
//   BENCH_TLS_CERT, BENCH_TLS_KEY   PEM files (required)
//   BENCH_OP_CLIENT_ID              default "bench"
//   BENCH_OP_CLIENT_SECRET          default "bench-secret-0123456789abcdef"
//   BENCH_OP_SCOPE                  default "api:read"
//   BENCH_OP_REDIRECT_URI           default "https://127.0.0.1/cb"
//   BENCH_OP_ID_TOKEN_ALG           RS256 (default) or ES256, as scopegate's --id-token-alg
//   BENCH_OP_LISTEN_HOST            default "127.0.0.1"
//   BENCH_OP_PORT                   default 0 (any free port)
//
// On success it prints exactly one line to stdout:
//   oidc-provider is serving https://127.0.0.1:PORT
// GET /healthz is answered by plain node (no koa, no oidc-provider): the
// ceiling of the HTTPS stack the provider runs on.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';
import { setStorage } from 'oidc-provider/lib/adapters/memory_adapter.js';

const env = process.env;
const certFile = env.BENCH_TLS_CERT;
const keyFile = env.BENCH_TLS_KEY;
if (!certFile || !keyFile) {
  console.error('provider.mjs: BENCH_TLS_CERT and BENCH_TLS_KEY must be set');
  process.exit(2);
}
const clientId = env.BENCH_OP_CLIENT_ID || 'bench';
const clientSecret = env.BENCH_OP_CLIENT_SECRET || 'bench-secret-0123456789abcdef';
const scope = env.BENCH_OP_SCOPE || 'api:read';
const host = env.BENCH_OP_LISTEN_HOST || '127.0.0.1';
const port = Number(env.BENCH_OP_PORT || 0);
const redirectUri = env.BENCH_OP_REDIRECT_URI || 'https://127.0.0.1/cb';

// The default in-memory adapter keeps its entries in a 1000-entry LRU, which would drop the
// pre-generated codes (tens of thousands) before they are redeemed. The same adapter over an
// unbounded map that honours each entry's expiry: every token and code stays findable for its
// lifetime, as in scopegate's store.
class ExpiringMap {
  #m = new Map();
  get(key) {
    const e = this.#m.get(key);
    if (e === undefined) return undefined;
    if (e.until && e.until < Date.now()) {
      this.#m.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key, value, maxAgeMs) {
    this.#m.set(key, { value, until: maxAgeMs ? Date.now() + maxAgeMs : 0 });
  }
  delete(key) {
    this.#m.delete(key);
  }
}
setStorage(new ExpiringMap());

// A fresh signing key per run instead of the library's built-in development
// keystore (which logs a warning). Client-credentials tokens are opaque here
// (no resource indicator => stored in the adapter, not a JWT), so the key signs
// only the ID tokens of the code flow: RS256 (the library's default, and
// scopegate's) or ES256, whichever BENCH_OP_ID_TOKEN_ALG names.
const idTokenAlg = env.BENCH_OP_ID_TOKEN_ALG || 'RS256';
if (!['RS256', 'ES256'].includes(idTokenAlg)) {
  console.error('provider.mjs: BENCH_OP_ID_TOKEN_ALG must be RS256 or ES256');
  process.exit(2);
}
const { privateKey } = idTokenAlg === 'ES256'
  ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
  : generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: `bench-${idTokenAlg.toLowerCase()}`, use: 'sig', alg: idTokenAlg };

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: idTokenAlg,
      scope: `openid profile ${scope}`,
    },
  ],
  scopes: ['openid', 'offline_access', 'profile', ...scope.split(' ')],
  claims: { openid: ['sub'], profile: ['name', 'given_name', 'family_name', 'locale'] },
  // Every login is a member with the same profile, as scopegate's userinfo answers.
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, name: 'Test Member', given_name: 'Test', family_name: 'Member', locale: 'en-US' }),
  }),
  // As scopegate: a refresh token for every code of a client allowed to refresh (no
  // offline_access scope needed), kept on refresh by a confidential client (no rotation),
  // and no PKCE demanded of a confidential client (bench/run redeems without a verifier).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => false,
  pkce: { required: () => false },
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated confidential client may introspect (replaces the
      // default policy, which logs a "you SHOULD change it" notice).
      allowedPolicy: async (ctx) => ctx.oidc.client.clientAuthMethod !== 'none',
    },
    revocation: { enabled: false },
  },
  // Explicit TTLs so the default functions (which log notices) are not used.
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    AuthorizationCode: 600,
    Grant: 3600,
    RefreshToken: 86400,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  // Default in-memory adapter (over the unbounded map above); no `adapter` key on purpose.
};

const server = https.createServer({
  cert: readFileSync(certFile),
  key: readFileSync(keyFile),
  keepAlive: true,
});
// wrk keeps connections open for the whole run; don't let node's default
// keep-alive timeout (5s) close them between requests of a slow run.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;

let serverErrors = 0;
server.listen(port, host, () => {
  const addr = server.address();
  const issuer = `https://${host}:${addr.port}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => {
    serverErrors += 1;
    if (serverErrors <= 5) console.error('oidc-provider server_error:', err);
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    // The node/TLS ceiling: answered before koa and oidc-provider see it.
    if (req.url === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
      return;
    }
    callback(req, res);
  });
  console.log(`oidc-provider is serving ${issuer}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
