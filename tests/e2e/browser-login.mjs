// Drive headless Chromium through a full SSO sign-in: example app -> Tandem -> IdP -> app callback.
//
// Usage:
//   node tests/e2e/browser-login.mjs <app_url> <login> <expect> <screenshot_prefix>
//     expect: "success", or the error type the app must show (e.g. ScimUserNotActive),
//             optionally with the reason it must show after a colon (ScimUserNotActive:deactivated)
//     writes <prefix>-idp.png (the IdP's login form) and <prefix>-result.png (the app's answer)
//   node tests/e2e/browser-login.mjs --smoke <app_url> <screenshot_prefix>
//     only opens the app's home page and writes <prefix>-home.png (proves Chromium runs)
//
// The app is examples/app/server.mjs, the IdP tests/idp/oidc-idp.mjs (its devInteractions
// login form: fields "login" and "password", any password). Exit 0 on the expected
// outcome, 1 otherwise, 2 on bad usage. stdout: one PASS/FAIL line (and the page's text on
// failure); progress goes to stderr. Only loopback hosts are reached.
//
// playwright-core comes from tests/idp/node_modules (npm ci there), Chromium from /usr/bin/chromium.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const require = createRequire(new URL('../idp/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = Number(process.env.STEP_TIMEOUT_MS || 20_000);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function usage(message) {
  if (message) console.error(`browser-login: ${message}`);
  console.error('usage: node tests/e2e/browser-login.mjs <app_url> <login> <success|ErrorType> <screenshot_prefix>');
  console.error('       node tests/e2e/browser-login.mjs --smoke <app_url> <screenshot_prefix>');
  process.exit(2);
}

const argv = process.argv.slice(2);
const smoke = argv.includes('--smoke');
const args = argv.filter((a) => a !== '--smoke');
if (smoke ? args.length !== 2 : args.length !== 4) usage('wrong number of arguments');
const [appUrlArg, ...rest] = args;
let appUrl;
try {
  appUrl = new URL(appUrlArg);
} catch {
  usage(`not a URL: ${appUrlArg}`);
}
const [login, expect, prefix] = smoke ? [null, null, rest[0]] : rest;
mkdirSync(dirname(prefix) || '.', { recursive: true });

const label = smoke ? 'smoke' : `${login} (expect ${expect})`;
const isCallback = (url) => {
  const u = new URL(url);
  return u.origin === appUrl.origin && u.pathname === '/sso/callback';
};

async function pageText(page) {
  return page.evaluate(() => document.body?.innerText ?? '').catch(() => '');
}

async function oneLine(page, selector) {
  const loc = page.locator(selector);
  if ((await loc.count()) === 0) return null;
  return (await loc.first().innerText()).replace(/\s+/g, ' ').trim();
}

// Counts matches, as 0 while the page is between two documents.
async function present(page, selector) {
  try {
    return (await page.locator(selector).count()) > 0;
  } catch {
    return false;
  }
}

// Waits until the browser is on the app's callback page (answering the consent
// prompt if the IdP shows one), or the app or the IdP shows an error.
async function waitForOutcome(page) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await page.waitForLoadState('domcontentloaded').catch(() => {});
    const url = page.url();
    const onApp = new URL(url).origin === appUrl.origin;
    if (onApp && await present(page, '#error-type')) return 'app';
    if (isCallback(url) && await present(page, 'h1')) return 'app';
    if (!onApp) {
      if (await present(page, 'input[name="prompt"][value="consent"]')) {
        console.error(`browser-login: ${label}: answering the IdP's consent prompt`);
        const form = page.locator('form:has(input[name="prompt"][value="consent"])');
        await form.locator('button[type="submit"]').click();
        await form.waitFor({ state: 'detached' }).catch(() => {});
        continue;
      }
      if (await present(page, '#idp-error')) return 'idp-error';
    }
    await page.waitForTimeout(150);
  }
  throw new Error(`timed out after ${STEP_TIMEOUT_MS} ms waiting for the app's callback page (at ${page.url()})`);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let ok = false;
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  // Nothing leaves the machine: requests to other hosts (e.g. the IdP page's web font) are refused.
  await context.route('**/*', (route) => {
    const { protocol, hostname } = new URL(route.request().url());
    const local = LOOPBACK.has(hostname) || !['http:', 'https:', 'ws:', 'wss:'].includes(protocol);
    return local ? route.continue() : route.abort('blockedbyclient');
  });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);

  await page.goto(appUrl.href, { waitUntil: 'domcontentloaded' });

  if (smoke) {
    const button = page.getByRole('button', { name: 'Sign in with SSO' });
    await page.getByLabel('Work email').waitFor();
    await button.waitFor();
    await page.screenshot({ path: `${prefix}-home.png`, fullPage: true });
    console.log(`PASS smoke: Chromium ${browser.version()} opened ${appUrl.href}, `
      + `form found ("${(await button.innerText()).trim()}"), screenshot ${prefix}-home.png`);
    ok = true;
  } else {
    const email = login.includes('@') ? login : `${login}@example.com`;
    await page.getByLabel('Work email').fill(email);
    await page.getByRole('button', { name: 'Sign in with SSO' }).click();

    // The IdP's login form, the IdP's error page, or the app showing why it could not start.
    const idpForm = page.locator('input[name="login"]');
    await idpForm.or(page.locator('#error-type')).or(page.locator('#idp-error')).first().waitFor();
    let idpShot = null;
    let outcome = 'app';
    if ((await page.locator('#idp-error').count()) > 0) {
      outcome = 'idp-error';
    } else if ((await idpForm.count()) > 0) {
      console.error(`browser-login: ${label}: at the IdP ${new URL(page.url()).origin}`);
      await idpForm.fill(login);
      await page.locator('input[name="password"]').fill('any-password');
      idpShot = `${prefix}-idp.png`;
      await page.screenshot({ path: idpShot, fullPage: true });
      const loginForm = page.locator('form:has(input[name="login"])');
      await loginForm.locator('button[type="submit"]').click();
      await loginForm.waitFor({ state: 'detached' });
      outcome = await waitForOutcome(page);
    } else {
      console.error(`browser-login: ${label}: the app refused before reaching the IdP`);
    }

    const resultShot = `${prefix}-result.png`;
    await page.screenshot({ path: resultShot, fullPage: true });
    const h1 = await oneLine(page, 'h1');
    const errorType = await oneLine(page, '#error-type');
    const reason = await oneLine(page, '#error-reason');
    const status = await oneLine(page, '#error-status');
    const shots = [idpShot, resultShot].filter(Boolean).join(', ');

    if (outcome === 'idp-error') {
      console.log(`FAIL ${label}: the IdP showed an error: ${await oneLine(page, '#idp-error')} `
        + `${await oneLine(page, '#idp-error-description') ?? ''} [${shots}]`);
    } else if (expect === 'success') {
      ok = h1 === `Signed in as ${email}` && errorType === null;
      const details = ok
        ? `SCIM user ${await oneLine(page, '#scim-user-id')} (${await oneLine(page, '#scim-user-name') ?? '-'}), `
          + `groups: ${await oneLine(page, '#groups')}`
        : `got "${h1}"${errorType ? ` ${errorType}` : ''}${reason ? ` (${reason})` : ''}${status ? ` HTTP ${status}` : ''}`;
      console.log(`${ok ? 'PASS' : 'FAIL'} ${label}: ${ok ? `"${h1}", ${details}` : details} [${shots}]`);
    } else {
      const [expectType, expectReason] = expect.split(':');
      // The user sees a support ID (the login event), never Tandem's message for the admin.
      const supportId = await oneLine(page, '#support-id');
      ok = h1 === 'Sign-in refused' && errorType === expectType && (expectReason === undefined || reason === expectReason)
        && /^[0-9a-f-]{36}$/.test(supportId ?? '') && !(await present(page, '#error-message'));
      console.log(`${ok ? 'PASS' : 'FAIL'} ${label}: "${h1}"${errorType ? ` ${errorType}` : ''}`
        + `${reason ? ` (reason ${reason})` : ''}${status ? ` HTTP ${status}` : ''} [${shots}]`);
    }
  }
} catch (e) {
  console.log(`FAIL ${label}: ${e.message.split('\n')[0]}`);
  if (page) {
    await page.screenshot({ path: `${prefix}-${smoke ? 'home' : 'result'}.png`, fullPage: true }).catch(() => {});
  }
} finally {
  if (!ok && page) {
    console.log(`--- page at ${page.url()}:`);
    console.log((await pageText(page)).trim().slice(0, 4000) || '(empty page)');
    console.log('---');
  }
  await browser.close();
}
process.exit(ok ? 0 : 1);
