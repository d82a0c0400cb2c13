// Drive the admin dashboard in headless Chromium: sign in with an integration
// key, open a customer whose current strategy leaves users unmatched, check
// they are listed with their attributes, preview the recommended strategy,
// save it, and check the unmatched list is empty.
//
// Usage: node tests/e2e/dashboard.mjs <tandem_url> <integration_key> <customer_id> <expected_unmatched_email> <screenshot_prefix>
// Exit 0 when every step held, 1 otherwise (printing the page text). Screenshots:
// <prefix>-customers.png, <prefix>-unmatched.png, <prefix>-preview.png, <prefix>-saved.png.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const require = createRequire(new URL('../idp/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [base, key, customer, email, prefix] = process.argv.slice(2);
if (!prefix) {
  console.error('usage: node tests/e2e/dashboard.mjs <tandem_url> <integration_key> <customer_id> <expected_unmatched_email> <screenshot_prefix>');
  process.exit(2);
}
mkdirSync(dirname(prefix) || '.', { recursive: true });
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const check = (cond, what) => { if (!cond) throw new Error(what); console.error(`dashboard: ok: ${what}`); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let page;
let ok = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route('**/*', (route) => {
    const { hostname } = new URL(route.request().url());
    return LOOPBACK.has(hostname) ? route.continue() : route.abort('blockedbyclient');
  });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);

  await page.goto(`${base}/dashboard`);
  check(new URL(page.url()).pathname === '/dashboard/login', 'signed-out visit lands on the sign-in page');
  await page.getByLabel('Integration key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Customers' }).waitFor();
  check(await page.getByRole('link', { name: customer, exact: true }).count() === 1, `customer ${customer} is listed`);
  await page.screenshot({ path: `${prefix}-customers.png`, fullPage: true });

  await page.getByRole('link', { name: customer, exact: true }).click();
  await page.getByRole('heading', { name: 'Matching' }).waitFor();
  const unmatched = page.locator('#unmatched');
  check(await unmatched.count() === 1, 'the current strategy leaves users unmatched');
  const row = unmatched.locator('tbody tr', { hasText: email });
  check(await row.count() === 1, `${email} is listed as unmatched`);
  const rowText = await row.innerText();
  check(rowText.includes('matches under'), 'the nearest SCIM user is shown with the strategies that would match');
  await row.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${prefix}-unmatched.png`, fullPage: true });

  const recommended = await page.locator('#preview option', { hasText: '(recommended)' }).getAttribute('value');
  check(Boolean(recommended), `a strategy is recommended (${recommended})`);
  await page.locator('#preview').selectOption(recommended);
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByText(`Previewing ${recommended}`).waitFor();
  check(await page.locator('#unmatched-empty').count() === 1, 'the preview shows no unmatched users');
  await page.screenshot({ path: `${prefix}-preview.png`, fullPage: true });

  await page.getByRole('button', { name: `Save ${recommended} as this customer's strategy` }).click();
  await page.getByText(`Saved: the matching strategy is now ${recommended}`).waitFor();
  check(await page.locator('#unmatched-empty').count() === 1, 'after saving, the unmatched list is empty');
  await page.screenshot({ path: `${prefix}-saved.png`, fullPage: true });
  console.log(`PASS dashboard: ${email} unmatched under the old strategy, ${recommended} previewed and saved, none unmatched`);
  ok = true;
} catch (e) {
  console.log(`FAIL dashboard: ${e.message}`);
  if (page) {
    console.log((await page.evaluate(() => document.body?.innerText ?? '').catch(() => '')).slice(0, 3000));
    await page.screenshot({ path: `${prefix}-failure.png`, fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
