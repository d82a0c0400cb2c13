// Loopback OpenID Provider for Tandem's tests (oidc-provider 9, code flow).
//
// Usage: node tests/idp/oidc-idp.mjs
// Env:
//   PORT           port on 127.0.0.1 (default 0: a free port)
//   ISSUER         issuer URL (default http://127.0.0.1:<port>)
//   CLIENT_ID      the one registered client (default test-client)
//   CLIENT_SECRET  its secret (default test-secret)
//   CLIENT_JWKS_URI  registers the client for private_key_jwt instead, with its
//                  public keys fetched from this URL (no secret then)
//   REDIRECT_URIS  comma-separated redirect URIs (default http://127.0.0.1:8080/sso/callback)
//   AUTO_LOGIN=1   an authorization request with login_hint=<login> skips the login form
//   PKCE_REQUIRED  "0" or "false" makes PKCE optional (default: required, S256)
//   CLAIMS_FILE    JSON file {"<login>": {extra claims}} merged into that login's claims
//
// Any login name and any password are accepted on the login form (fields
// "login" and "password"). Consent is granted automatically. Once listening it
// prints one line on stdout, `READY <issuer>`; everything else goes to stderr.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

// stdout carries only the READY line: send the library's notices to stderr.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const env = process.env;

function fail(message) {
  console.error(`oidc-idp: ${message}`);
  process.exit(2);
}

const PORT = env.PORT === undefined || env.PORT === '' ? 0 : Number(env.PORT);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail(`invalid PORT ${JSON.stringify(env.PORT)}`);
const CLIENT_ID = env.CLIENT_ID || 'test-client';
const CLIENT_SECRET = env.CLIENT_SECRET || 'test-secret';
const CLIENT_JWKS_URI = env.CLIENT_JWKS_URI || '';
const REDIRECT_URIS = (env.REDIRECT_URIS || 'http://127.0.0.1:8080/sso/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);
const AUTO_LOGIN = env.AUTO_LOGIN === '1';
const PKCE_REQUIRED = !['0', 'false', 'no'].includes(String(env.PKCE_REQUIRED ?? '').toLowerCase());
const SCOPES = ['openid', 'email', 'profile', 'offline_access'];
const STANDARD_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['preferred_username', 'name', 'given_name', 'family_name'],
};

let extraClaims = {};
if (env.CLAIMS_FILE) {
  try {
    extraClaims = JSON.parse(readFileSync(env.CLAIMS_FILE, 'utf8'));
  } catch (e) {
    fail(`cannot read CLAIMS_FILE ${env.CLAIMS_FILE}: ${e.message}`);
  }
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(extraClaims) || !Object.values(extraClaims).every(isObject)) {
    fail('CLAIMS_FILE must hold a JSON object mapping each login name to an object of claims');
  }
}
// Claims named in CLAIMS_FILE that no scope releases yet ride on the openid scope,
// so they reach the ID token and userinfo whatever scopes are asked for.
const known = new Set(Object.values(STANDARD_CLAIMS).flat());
const extraNames = [...new Set(Object.values(extraClaims).flatMap((c) => Object.keys(c)))]
  .filter((n) => !known.has(n));

function claimsFor(login) {
  const local = login.split('@')[0];
  const email = login.includes('@') ? login : `${login}@example.com`;
  const given = local.charAt(0).toUpperCase() + local.slice(1);
  return {
    sub: login,
    email,
    email_verified: true,
    preferred_username: local,
    name: `${given} Tester`,
    given_name: given,
    family_name: 'Tester',
    ...(extraClaims[login] || {}),
  };
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function buildProvider(issuer) {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      redirect_uris: REDIRECT_URIS,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(CLIENT_JWKS_URI
        ? { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: CLIENT_JWKS_URI }
        // The registered method; client_secret_post is accepted for this client as well.
        : { client_secret: CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_basic' }),
    }],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    jwks: { keys: [{ ...key, kid: 'tandem-test-idp-1', use: 'sig', alg: 'RS256' }] },
    // A client's jwks_uri (Tandem's JWK Set) is on loopback here, which the
    // library's guard against fetching special-use addresses refuses.
    fetch: (url, options) => {
      const { dispatcher: _guard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    cookies: { keys: ['tandem-test-idp-cookie-key-not-secret'] },
    claims: { ...STANDARD_CLAIMS, openid: [...STANDARD_CLAIMS.openid, ...extraNames] },
    // Email and profile claims go into the ID token too, as Okta and Entra do.
    conformIdTokenClaims: false,
    pkce: { required: () => PKCE_REQUIRED },
    features: { devInteractions: { enabled: true } },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
      RefreshToken: 86400,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => claimsFor(id) }),
    // Consent is granted automatically: every client gets every scope it asks for.
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
      if (grantId) {
        const existing = await oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope(SCOPES.join(' '));
      await grant.save();
      return grant;
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>IdP error</title></head>'
        + '<body><h1>IdP error</h1>'
        + `<p id="idp-error">${escapeHtml(out.error)}</p>`
        + `<p id="idp-error-description">${escapeHtml(out.error_description || '')}</p></body></html>`;
    },
  });

  if (AUTO_LOGIN) {
    // GET /interaction/<uid> for a login prompt with a login_hint finishes the login as that name.
    provider.use(async (ctx, next) => {
      const uid = ctx.method === 'GET' && ctx.path.match(/^\/interaction\/([^/]+)$/);
      if (uid) {
        const details = await provider.interactionDetails(ctx.req, ctx.res);
        const hint = details.params.login_hint;
        if (details.prompt.name === 'login' && hint) {
          const returnTo = await provider.interactionResult(
            ctx.req, ctx.res, { login: { accountId: String(hint) } }, { mergeWithLastSubmission: false },
          );
          ctx.status = 303;
          ctx.redirect(returnTo);
          return undefined;
        }
      }
      return next();
    });
  }

  provider.on('server_error', (_ctx, err) => console.error('oidc-idp: server_error', err));
  return provider;
}

// The HTTP server binds first, so that PORT=0 yields the port the issuer names.
let handle = (_req, res) => { res.statusCode = 503; res.end('starting'); };
const server = http.createServer((req, res) => handle(req, res));
server.on('error', (e) => fail(`cannot listen on 127.0.0.1:${PORT}: ${e.message}`));
server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = (env.ISSUER || `http://127.0.0.1:${port}`).replace(/\/+$/, '');
  let provider;
  try {
    provider = buildProvider(issuer);
  } catch (e) {
    fail(`cannot configure the provider: ${e.message}`);
  }
  const callback = provider.callback();
  // An issuer with a path (http://127.0.0.1:9000/tenant) serves its routes under that path.
  const prefix = new URL(issuer).pathname.replace(/\/+$/, '');
  handle = !prefix ? callback : (req, res) => {
    if (req.url === prefix || req.url.startsWith(`${prefix}/`) || req.url.startsWith(`${prefix}?`)) {
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length) || '/';
      if (req.url.startsWith('?')) req.url = `/${req.url}`;
      return callback(req, res);
    }
    res.statusCode = 404;
    return res.end('not found');
  };
  process.stdout.write(`READY ${issuer}\n`);
});

function shutdown(signal) {
  console.error(`oidc-idp: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
