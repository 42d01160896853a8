#!/usr/bin/env node
// Drives one whole sso-bridge login in Debian's headless Chromium (the `chromium` package) through
// playwright-core, which never downloads a browser: RP /start → the bridge's login page (types the
// email) → SimpleSAMLphp's login form (username, password) → the IdP's auto-submitting POST to the
// ACS (scripts run; with --no-script the harness presses the visible buttons instead) → the RP's
// callback.
//
//   node tests/support/chromium/login.js --start URL --email ADDR --username U --password P \
//     [--screenshot-login PNG] [--screenshot-on-failure PNG] [--no-script] [--timeout-ms 20000] \
//     [--drop-cookie NAME] [--chromium /usr/bin/chromium]
//
// --drop-cookie deletes that cookie once the IdP's login form is reached, like a browser that
// blocks it (the bridge's `ssob_login`: its ACS must then refuse clearly, without a loop).
// stdout carries exactly one JSON line:
//   {"outcome":"verdict","status":200,"verdict":{…the RP's callback JSON…},"navigations":[…]}
//   {"outcome":"refused","status":400,"error_kind":"cookie_missing","text":"…","navigations":[…]}
//   {"outcome":"harness_error","message":"…","url":"…","navigations":[…]}
// `navigations` lists every main-frame document response: method, URL without its query, status,
// the bridge's x-error-kind and x-acs-step headers, and the names of the cookies the browser sent.
// Exit status 0 for a verdict or a refusal (the test judges them), 1 for a harness error, 2 for bad
// arguments. Diagnostics go to stderr. Passwords, SAML messages and cookie values are never printed.

'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

// Belt and braces: playwright-core has no browser download of its own, and this stops any attempt.
process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
const { chromium } = require('playwright-core');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox', // as root in a container there is no usable sandbox
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

function log(...parts) {
  process.stderr.write(`chromium-login: ${parts.join(' ')}\n`);
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      strict: true,
      allowPositionals: false,
      options: {
        start: { type: 'string' },
        email: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        'screenshot-login': { type: 'string' },
        'screenshot-on-failure': { type: 'string' },
        'no-script': { type: 'boolean', default: false },
        'drop-cookie': { type: 'string' },
        'timeout-ms': { type: 'string', default: '20000' },
        chromium: { type: 'string', default: '/usr/bin/chromium' },
      },
    }));
  } catch (err) {
    log(`error: ${err.message}`);
    process.exit(2);
  }
  for (const name of ['start', 'email', 'username', 'password']) {
    if (values[name] === undefined) {
      log(`error: --${name} is required`);
      process.exit(2);
    }
  }
  const timeout = Number(values['timeout-ms']);
  if (!Number.isInteger(timeout) || timeout <= 0) {
    log('error: --timeout-ms must be a positive integer');
    process.exit(2);
  }
  return { ...values, timeout };
}

function withoutQuery(url) {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(unparseable)';
  }
}

function isLoopback(url) {
  try {
    const u = new URL(url);
    if (!['http:', 'https:'].includes(u.protocol)) return true; // data:, about:, chrome-error:
    return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

function cookieNames(header) {
  if (!header) return [];
  return header
    .split(';')
    .map((p) => p.split('=')[0].trim())
    .filter(Boolean);
}

async function main() {
  const cfg = parseCli();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sso-bridge-chromium-'));
  const startOrigin = new URL(cfg.start).origin;
  const navigations = [];
  const pending = [];
  const offsite = [];
  let context;
  let page;
  let result;

  // Settles when the main frame gets the RP's callback or one of the bridge's error pages.
  let settle;
  const settled = new Promise((resolve) => {
    settle = resolve;
  });

  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: cfg.chromium,
      headless: true,
      args: CHROMIUM_ARGS,
      javaScriptEnabled: !cfg['no-script'],
      acceptDownloads: false,
      viewport: { width: 900, height: 700 },
      timeout: cfg.timeout,
    });
    context.setDefaultTimeout(cfg.timeout);
    context.on('request', (req) => {
      if (!isLoopback(req.url())) offsite.push(withoutQuery(req.url()));
    });
    page = context.pages()[0] || (await context.newPage());

    page.on('response', (resp) => {
      const req = resp.request();
      if (!req.isNavigationRequest() || resp.frame() !== page.mainFrame()) return;
      const headers = resp.headers();
      const entry = {
        method: req.method(),
        url: withoutQuery(resp.url()),
        status: resp.status(),
        error_kind: headers['x-error-kind'] || null,
        acs_step: headers['x-acs-step'] || null,
        cookies_sent: [],
      };
      navigations.push(entry);
      // The Cookie header the network stack really sent (known only after the fact).
      pending.push(
        req
          .allHeaders()
          .then((h) => {
            entry.cookies_sent = cookieNames(h.cookie);
          })
          .catch(() => {}),
      );
      if (entry.error_kind) {
        settle({ kind: 'refused', resp, entry });
      } else if (entry.url.startsWith(startOrigin) && new URL(resp.url()).pathname.startsWith('/api/auth/callback/')) {
        settle({ kind: 'verdict', resp, entry });
      }
    });

    const timeout = new Promise((_, reject) => {
      setTimeout(() => reject(new Error(`no verdict within ${cfg.timeout} ms`)), cfg.timeout).unref();
    });
    const drive = async () => {
      await page.goto(cfg.start);
      // The bridge's login page (unless login_hint skipped it).
      const email = page.locator('input[name="email"]');
      if (await email.count()) {
        if (cfg['screenshot-login']) {
          await page.screenshot({ path: cfg['screenshot-login'], fullPage: true });
        }
        await email.fill(cfg.email);
        await Promise.all([page.waitForNavigation(), page.locator('form[action="/login"] button[type="submit"]').click()]);
      }
      // SimpleSAMLphp's login form.
      await page.locator('input[name="username"]').waitFor();
      if (cfg['drop-cookie']) {
        await context.clearCookies({ name: cfg['drop-cookie'] });
      }
      await page.locator('input[name="username"]').fill(cfg.username);
      await page.locator('input[name="password"]').fill(cfg.password);
      await Promise.all([page.waitForNavigation(), page.locator('#submit_button, button[type="submit"]').first().click()]);
      // Auto-submitting forms (the IdP's POST to the ACS, the bridge's same-site resubmit) run by
      // themselves; without scripts, press their visible button, as a person would.
      if (cfg['no-script']) {
        for (let i = 0; i < 4; i += 1) {
          const done = await Promise.race([settled.then(() => true), page.waitForLoadState('load').then(() => false)]);
          if (done) break;
          const button = page.locator('form[method="post"] button[type="submit"]:visible, form[method="post"] input[type="submit"]:visible').first();
          if (!(await button.count())) break;
          await Promise.all([page.waitForNavigation(), button.click()]);
        }
      }
      return settled;
    };
    const outcome = await Promise.race([drive(), timeout]);
    await page.waitForLoadState('load');
    await Promise.all(pending);

    if (outcome.kind === 'verdict') {
      const text = await outcome.resp.text();
      let verdict;
      try {
        verdict = JSON.parse(text);
      } catch {
        verdict = { unparsed: text.slice(0, 2000) };
      }
      result = { outcome: 'verdict', status: outcome.entry.status, verdict, navigations };
    } else {
      const text = (await page.locator('main').innerText().catch(() => '')) || (await page.innerText('body'));
      result = {
        outcome: 'refused',
        status: outcome.entry.status,
        error_kind: outcome.entry.error_kind,
        text,
        navigations,
      };
    }
  } catch (err) {
    log(`failed: ${err && err.stack ? err.stack : err}`);
    await Promise.all(pending);
    result = {
      outcome: 'harness_error',
      message: String((err && err.message) || err).split('\n')[0],
      url: page ? withoutQuery(page.url()) : null,
      navigations,
    };
  }

  if (result.outcome !== 'verdict' && cfg['screenshot-on-failure'] && page) {
    try {
      await page.screenshot({ path: cfg['screenshot-on-failure'], fullPage: true });
      result.screenshot = cfg['screenshot-on-failure'];
    } catch (err) {
      log(`screenshot failed: ${err.message}`);
    }
  }
  result.offsite_requests = offsite;
  if (context) await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.outcome === 'harness_error' ? 1 : 0);
}

main().catch((err) => {
  log(`fatal: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
