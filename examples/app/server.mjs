// Minimal app that signs its users in through Tandem (Node built-ins only).
//
// Usage: TANDEM_URL=http://127.0.0.1:8080 TANDEM_API_KEY=tandem_ik_… node examples/app/server.mjs
// Env:
//   PORT            port on 127.0.0.1 (default 0: a free port)
//   TANDEM_URL      base URL of Tandem (default http://127.0.0.1:8080)
//   TANDEM_API_KEY  an integration key (`tandem integration-key create --name my-app`)
//
// Once listening it prints one line on stdout, `READY http://127.0.0.1:<port>`.
//
// Routes:
//   GET  /              sign-in form (work email or customer ID)
//   POST /login         POST {TANDEM_URL}/api/v1/sso/login/initiate, set the state cookie, 302 to the IdP
//   GET  /sso/callback[/{customer_id}]  POST {TANDEM_URL}/api/v1/sso/login/complete, show who signed in or why not
import http from 'node:http';

const PORT = process.env.PORT === undefined || process.env.PORT === '' ? 0 : Number(process.env.PORT);
const TANDEM_URL = (process.env.TANDEM_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const TANDEM_API_KEY = process.env.TANDEM_API_KEY || '';
// Behind https (COOKIE_SECURE=1), the state cookie is `__Host-` prefixed and
// Secure: no sibling subdomain can plant one of the same name.
const COOKIE_SECURE = process.env.COOKIE_SECURE === '1';
const STATE_COOKIE = COOKIE_SECURE ? '__Host-tandem_sso_state' : 'tandem_sso_state';
const TANDEM_TIMEOUT_MS = 15_000;
const MAX_FORM_BYTES = 16 * 1024;

if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`example-app: invalid PORT ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
if (!TANDEM_API_KEY) console.error('example-app: TANDEM_API_KEY is not set; Tandem will answer 401');

// ---------------------------------------------------------------- HTML

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Example app</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; color: #1b1b1b; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  input { font: inherit; width: 100%; box-sizing: border-box; padding: .5rem; border: 1px solid #767676; border-radius: 4px; }
  button { font: inherit; margin-top: 1.25rem; padding: .5rem 1.25rem; border: 0; border-radius: 4px; background: #1a4fd6; color: #fff; cursor: pointer; }
  button:focus-visible, input:focus-visible { outline: 3px solid #ffbf47; outline-offset: 1px; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
  dt { font-weight: 600; }
  dd { margin: 0; overflow-wrap: anywhere; }
  .hint { color: #505050; font-size: .9rem; }
  .notice { border-left: 4px solid #b3261e; padding: .25rem .75rem; background: #fdecea; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function homePage(notice = '') {
  return layout('Sign in', `<h1>Sign in</h1>
${notice ? `<p class="notice" role="alert">${esc(notice)}</p>` : ''}
<form method="post" action="/login">
  <label for="email">Work email</label>
  <input id="email" name="email" type="email" autocomplete="email" inputmode="email" aria-describedby="email-hint">
  <p id="email-hint" class="hint">Your company's identity provider is found from your email's domain.</p>
  <label for="customer_id">or customer ID</label>
  <input id="customer_id" name="customer_id" type="text" autocomplete="organization">
  <button type="submit">Sign in with SSO</button>
</form>`);
}

function signedInPage(login) {
  const scim = login.scim_user;
  const groups = (scim?.groups || []).map((g) => g.display ?? g.value).filter((g) => g != null);
  const rows = [
    ['Customer', login.customer_id, 'customer-id'],
    ['OIDC user id', login.oidc_user_id, 'oidc-user-id'],
    ['Email', `${login.email ?? ''}${login.email_verified ? ' (verified)' : ''}`, 'email'],
    ['Name', [login.given_name, login.family_name].filter(Boolean).join(' '), 'name'],
  ];
  if (scim) {
    rows.push(['SCIM user id', scim.id, 'scim-user-id']);
    rows.push(['SCIM userName', scim.user_name, 'scim-user-name']);
    rows.push(['Groups', groups.length ? groups.join(', ') : 'none', 'groups']);
  } else {
    rows.push(['SCIM user', 'no SCIM connection', 'scim-user-id']);
    rows.push(['Groups', 'no SCIM connection', 'groups']);
  }
  const next = safeLocalPath(login.post_login_redirect_url) || '/';
  return layout('Signed in', `<h1>Signed in as ${esc(login.email ?? login.oidc_user_id)}</h1>
<dl>
${rows.map(([k, v, id]) => `  <dt>${esc(k)}</dt><dd id="${id}">${esc(v)}</dd>`).join('\n')}
</dl>
<p><a href="${esc(next)}">Continue</a></p>`);
}

// What an end user is told, by error type. Tandem's `message` is for the
// admin (it names strategies, endpoints, and may quote the IdP's own
// error_description, which anyone can put in a callback link): it is logged
// here, never shown; the support ID (the login event) lets an admin find it.
const USER_TEXT = {
  ScimUserNotActive: 'Your account is not active for this application. Ask your administrator for access.',
  ScimUserAmbiguous: 'Your account matches more than one user. Ask your administrator to check your account.',
  LoginBlockedByEmailAllowlist: 'This email address cannot sign in here. Ask your administrator.',
  InvalidCsrfState: 'This sign-in link has expired or was already used. Start again.',
  ClientNotFound: 'No single sign-on is set up for that email or customer ID.',
  EmailDomainNotUnique: 'Several organizations use that email domain: sign in with your customer ID.',
  IssuerNotUnique: 'Several organizations use that identity provider: sign in with your customer ID.',
  IdentityProviderError: 'Your identity provider could not complete the sign-in. Try again, or ask your administrator.',
};

function refusedPage(status, error) {
  const details = error.details && typeof error.details === 'object' ? error.details : {};
  console.error(`example-app: sign-in refused: ${error.type} (${status}): ${error.message}`
    + `${details.login_event_id ? ` [login event ${details.login_event_id}]` : ''}`);
  const text = USER_TEXT[error.type] || 'The sign-in did not succeed. Try again, or ask your administrator.';
  return layout('Sign-in refused', `<h1>Sign-in refused</h1>
<p id="error-text">${esc(text)}</p>
<dl>
  <dt>Error</dt><dd id="error-type">${esc(error.type)}</dd>
${details.reason !== undefined ? `  <dt>Reason</dt><dd id="error-reason">${esc(details.reason)}</dd>\n` : ''}${
  details.login_event_id ? `  <dt>Support ID</dt><dd id="support-id">${esc(details.login_event_id)}</dd>\n` : ''
}  <dt>HTTP status</dt><dd id="error-status">${esc(status)}</dd>
</dl>
<p><a href="/">Try again</a></p>`);
}

// A path on this site: browsers drop tabs and line breaks from URLs, so
// "/\t/evil.example" would lead off-site; control characters are refused.
function safeLocalPath(value) {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.includes('\\')
    && !/[\x00-\x1f\x7f]/.test(value) ? value : null;
}

// ---------------------------------------------------------------- HTTP helpers

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

function sendHtml(res, status, html, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS, ...headers });
  res.end(html);
}

function stateCookie(value, maxAge) {
  const secure = COOKIE_SECURE ? '; Secure' : '';
  return `${STATE_COOKIE}=${encodeURIComponent(value)}; HttpOnly; SameSite=Lax; Path=/${secure}; Max-Age=${maxAge}`;
}

function readCookie(req, name) {
  for (const part of (req.headers.cookie || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      const raw = part.slice(i + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        return raw;
      }
    }
  }
  return null;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_FORM_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_FORM_BYTES) reject(Object.assign(new Error('The form is too large.'), { status: 413 }));
      else resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
  });
}

// POST a JSON body to Tandem. Resolves to {status, body} where body is the parsed
// JSON, or {error} shaped like Tandem's errors when Tandem is unreachable or its
// answer is not JSON.
async function callTandem(path, payload) {
  let res;
  try {
    res = await fetch(`${TANDEM_URL}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TANDEM_API_KEY}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify(payload),
      redirect: 'manual',
      signal: AbortSignal.timeout(TANDEM_TIMEOUT_MS),
    });
  } catch (e) {
    const cause = e.cause?.code || e.cause?.message || e.message;
    console.error(`example-app: ${path}: Tandem unreachable: ${cause}`);
    return {
      status: 502,
      body: { error: { type: 'TandemUnreachable', message: `Could not reach Tandem at ${TANDEM_URL}: ${cause}`, details: {} } },
    };
  }
  const text = await res.text().catch(() => '');
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (res.status !== 200 && !(body?.error && typeof body.error === 'object')) {
    body = {
      error: {
        type: 'UnexpectedResponse',
        message: `Tandem answered ${res.status} without an error object: ${text.slice(0, 200)}`,
        details: {},
      },
    };
  }
  return { status: res.status, body };
}

function errorStatus(status) {
  return status >= 400 && status <= 599 ? status : 502;
}

// ---------------------------------------------------------------- routes

async function login(req, res) {
  // Login CSRF: a sign-in started from another site (which could sign the
  // visitor in as someone else) is refused.
  const site = req.headers['sec-fetch-site'];
  if (site && site !== 'same-origin' && site !== 'none') {
    return sendHtml(res, 403, homePage('Start the sign-in from this page.'));
  }
  const form = await readForm(req);
  const customerId = (form.get('customer_id') || '').trim();
  const email = (form.get('email') || '').trim();
  if (!customerId && !email) {
    return sendHtml(res, 400, homePage('Enter your work email or your customer ID.'));
  }
  const payload = customerId ? { customer_id: customerId } : { email };
  payload.post_login_redirect_url = '/';
  const { status, body } = await callTandem('/api/v1/sso/login/initiate', payload);
  if (status === 200 && typeof body?.idp_url === 'string' && typeof body?.state_for_cookie === 'string') {
    res.writeHead(302, {
      location: body.idp_url,
      'set-cookie': stateCookie(body.state_for_cookie, 600),
      ...SECURITY_HEADERS,
    });
    return res.end();
  }
  const error = body?.error || {
    type: 'UnexpectedResponse', message: 'Tandem answered 200 without idp_url and state_for_cookie', details: {},
  };
  return sendHtml(res, errorStatus(status), refusedPage(status, error));
}

async function callback(req, res) {
  const { status, body } = await callTandem('/api/v1/sso/login/complete', {
    state_from_cookie: readCookie(req, STATE_COOKIE) ?? '',
    callback_path_and_query: req.url,
  });
  const clear = { 'set-cookie': stateCookie('', 0) };
  if (status === 200 && body && typeof body === 'object' && !body.error) {
    return sendHtml(res, 200, signedInPage(body), clear);
  }
  const error = body?.error || { type: 'UnexpectedResponse', message: 'Tandem answered 200 without a login', details: {} };
  // A callback that did not use this browser's login (no state, another
  // login's, a forged link), or that Tandem did not answer, leaves the
  // cookie alone: the sign-in it started can still finish.
  const notOurs = error.type === 'InvalidCsrfState' && ['missing', 'unknown', 'not_bound'].includes(error.details?.reason);
  const unanswered = ['TandemUnreachable', 'UnexpectedResponse'].includes(error.type);
  return sendHtml(res, errorStatus(status), refusedPage(status, error), notOurs || unanswered ? {} : clear);
}

const server = http.createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url, 'http://app.invalid');
    if (pathname === '/' && (req.method === 'GET' || req.method === 'HEAD')) return sendHtml(res, 200, homePage());
    if (pathname === '/login' && req.method === 'POST') return await login(req, res);
    // One route for every customer's redirect_url: /sso/callback or /sso/callback/{customer_id}
    // (Tandem wants each OIDC client on a path of its own).
    const isCallback = pathname === '/sso/callback' || pathname.startsWith('/sso/callback/');
    if (isCallback && req.method === 'GET') return await callback(req, res);
    if (['/', '/login'].includes(pathname) || isCallback) {
      return sendHtml(res, 405, layout('Method not allowed', '<h1>Method not allowed</h1>'));
    }
    return sendHtml(res, 404, layout('Not found', '<h1>Not found</h1><p><a href="/">Sign in</a></p>'));
  } catch (e) {
    console.error('example-app:', e.status ? e.message : e);
    if (!res.headersSent) {
      const text = e.status === 413 ? 'The form is too large.' : 'Try again in a moment.';
      sendHtml(res, e.status || 500, layout('Error', `<h1>Something went wrong</h1><p>${esc(text)}</p>`));
    } else {
      res.destroy();
    }
    return undefined;
  }
});

server.on('error', (e) => {
  console.error(`example-app: cannot listen on 127.0.0.1:${PORT}: ${e.message}`);
  process.exit(2);
});
server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`READY http://127.0.0.1:${server.address().port}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
