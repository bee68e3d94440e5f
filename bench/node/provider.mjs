// Comparison server for bench/run: panva's oidc-provider behind node's
// https.createServer on loopback, configured for the two flows scopegate is
// measured on (client-credentials issuance and token introspection).
//
// Environment:
//   BENCH_TLS_CERT, BENCH_TLS_KEY   PEM files (required)
//   BENCH_OP_CLIENT_ID              default "bench"
//   BENCH_OP_CLIENT_SECRET          default "bench-secret-0123456789abcdef"
//   BENCH_OP_SCOPE                  default "api:read"
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

// A fresh signing key per run instead of the library's built-in development
// keystore (which logs a warning). Client-credentials tokens are opaque here
// (no resource indicator => stored in the adapter, not a JWT), so the key is
// only needed to make the configuration valid.
// RSA/RS256 because that is the library's default ID Token algorithm.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
      scope,
    },
  ],
  scopes: ['openid', 'offline_access', ...scope.split(' ')],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
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
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  // Default in-memory adapter (a bounded LRU); no `adapter` key on purpose.
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
