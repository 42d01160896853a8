#!/usr/bin/env node
// Test relying party for sso-bridge integration tests.
//
// Plays Langfuse's "custom" OIDC provider the way next-auth v4 drives it: next-auth v4 depends on
// openid-client v5, so this uses openid-client v5 with the same client metadata, the same
// discovery URL (`${AUTH_CUSTOM_ISSUER}/.well-known/openid-configuration`), the same 10 s clock
// tolerance, PKCE S256 + state (+ nonce when asked) and the same callback path.
//
//   node tests/support/rp/rp.js --issuer URL --client-id ID --client-secret SECRET \
//     --auth-method client_secret_basic|client_secret_post --nonce yes|no \
//     [--port 0] [--alg RS256] [--exit-on-stdin-eof] [--public-host 127.0.0.1]
//
// It listens on 127.0.0.1; --public-host (127.0.0.1 or localhost) is the host name in its own
// URLs (callback, LISTENING line), so a browser test can put it on another site than the IdP.
// stdout carries exactly one line, `LISTENING http://<public host>:<port>`, once the server accepts
// requests; everything else (diagnostics, error stacks) goes to stderr. Secrets are never printed.
// See README.md next to this file for the routes and their output.

'use strict';

const http = require('node:http');
const diagnosticsChannel = require('node:diagnostics_channel');
const { AsyncLocalStorage } = require('node:async_hooks');
const { parseArgs } = require('node:util');

const { Issuer, generators, custom } = require('openid-client');

const CALLBACK_PATH = '/api/auth/callback/custom';
const SCOPE = 'openid email profile'; // Langfuse's default AUTH_CUSTOM_SCOPE
const COOKIE_PKCE = 'rp_pkce';
const COOKIE_STATE = 'rp_state';
const COOKIE_NONCE = 'rp_nonce';

function log(...parts) {
  process.stderr.write(`rp: ${parts.join(' ')}\n`);
}

function usage(message) {
  if (message) log(`error: ${message}`);
  process.stderr.write(
    'usage: node rp.js --issuer URL --client-id ID --client-secret SECRET ' +
      '--auth-method client_secret_basic|client_secret_post --nonce yes|no ' +
      '[--port 0] [--alg RS256] [--exit-on-stdin-eof] [--public-host 127.0.0.1|localhost]\n',
  );
  process.exit(2);
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      strict: true,
      allowPositionals: false,
      options: {
        issuer: { type: 'string' },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        'auth-method': { type: 'string' },
        nonce: { type: 'string' },
        port: { type: 'string', default: '0' },
        alg: { type: 'string', default: 'RS256' },
        'exit-on-stdin-eof': { type: 'boolean', default: false },
        'public-host': { type: 'string', default: '127.0.0.1' },
      },
    }));
  } catch (err) {
    usage(err.message);
  }
  for (const name of ['issuer', 'client-id', 'client-secret', 'auth-method', 'nonce']) {
    if (values[name] === undefined) usage(`--${name} is required`);
  }
  if (!['client_secret_basic', 'client_secret_post'].includes(values['auth-method'])) {
    usage('--auth-method must be client_secret_basic or client_secret_post');
  }
  if (!['yes', 'no'].includes(values.nonce)) usage('--nonce must be yes or no');
  if (!['127.0.0.1', 'localhost'].includes(values['public-host'])) {
    usage('--public-host must be 127.0.0.1 or localhost');
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage('--port must be 0..65535');
  try {
    new URL(values.issuer); // eslint-disable-line no-new
  } catch {
    usage('--issuer must be an absolute URL');
  }
  return {
    issuer: values.issuer,
    clientId: values['client-id'],
    clientSecret: values['client-secret'],
    authMethod: values['auth-method'],
    useNonce: values.nonce === 'yes',
    port,
    alg: values.alg,
    exitOnStdinEof: values['exit-on-stdin-eof'],
    publicHost: values['public-host'],
  };
}

// ---------------------------------------------------------------------------------------------
// Capturing the raw token endpoint response.
//
// openid-client v5 turns the token response into a TokenSet, which is lossy: its `expires_in`
// setter converts the received value into a derived `expires_at` (and `expires_in` then reads
// back as a countdown), and callback() may add `session_state`. The `custom.http_options` hook
// only sees outgoing options, never the response. So instead:
//
//  * each callback runs inside an AsyncLocalStorage context holding a capture slot;
//  * Node publishes `http.client.request.start` on diagnostics_channel synchronously inside
//    http.request(), i.e. still inside that callback's async context, so the subscriber can tell
//    which callback a request belongs to (safe with concurrent logins) and keep a reference to
//    the IncomingMessage of the POST to the token endpoint (listening for 'response' does not
//    consume the body, so openid-client's behaviour is unchanged);
//  * openid-client's request helper defines `response.body` as a lazy JSON.parse getter and,
//    once processResponse() has read it, redefines it as the parsed value. That parsed object is
//    exactly what `new TokenSet(body)` received (Object.assign copies it, never mutates it), so
//    after client.callback() resolves, `response.body` is the raw token response as sent by the
//    OP: its keys are the top-level field names and `expires_in` is the value as received.
// ---------------------------------------------------------------------------------------------
const captureContext = new AsyncLocalStorage();
let tokenEndpointPath = null; // pathname + search of the discovered token endpoint

diagnosticsChannel.subscribe('http.client.request.start', ({ request }) => {
  const slot = captureContext.getStore();
  if (!slot || request.method !== 'POST' || request.path !== tokenEndpointPath) return;
  request.once('response', (response) => {
    slot.tokenResponse = response;
  });
});

function rawTokenResponse(slot) {
  const response = slot.tokenResponse;
  const body = response && response.body;
  if (!body || typeof body !== 'object' || Buffer.isBuffer(body)) {
    const err = new Error('raw token endpoint response was not captured');
    err.name = 'HarnessError';
    throw err;
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Small HTTP helpers.
// ---------------------------------------------------------------------------------------------
function parseCookies(header) {
  const cookies = Object.create(null);
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep the raw value
    }
    if (!(name in cookies)) cookies[name] = value;
  }
  return cookies;
}

function setCookie(name, value) {
  return `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Lax`;
}

function clearCookie(name) {
  return `${name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
}

function sendJson(res, status, payload, extraHeaders = {}) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extraHeaders,
  });
  res.end(body);
}

function errorPayload(err) {
  const payload = {
    error: (err && err.name) || 'Error',
    message: (err && err.message) || String(err),
  };
  if (err && typeof err.error === 'string') {
    // OPError: the OP's own error code/description (authorization, token or userinfo response).
    payload.op_error = err.error;
    if (err.error_description !== undefined) payload.op_error_description = err.error_description;
    if (err.error_uri !== undefined) payload.op_error_uri = err.error_uri;
  }
  if (err && err.response && typeof err.response.statusCode === 'number') {
    payload.status = err.response.statusCode;
  }
  return payload;
}

function logError(route, err) {
  // Only the stack: RPError/OPError objects also carry the JWT, params and the HTTP response.
  process.stderr.write(`rp: ${route} failed: ${(err && err.stack) || String(err)}\n`);
}

function missingCheck(cookieName) {
  // next-auth v4 refuses the callback before talking to the OP when a check cookie is missing.
  const err = new Error(`${cookieName} cookie was missing`);
  err.name = 'MissingCheckCookie';
  return err;
}

// ---------------------------------------------------------------------------------------------
// Main.
// ---------------------------------------------------------------------------------------------
async function main() {
  const cfg = parseCli();

  // Langfuse's CustomSSOProvider sets `wellKnown: `${issuer}/.well-known/openid-configuration``
  // and next-auth v4 calls Issuer.discover(provider.wellKnown). For an issuer without a trailing
  // slash this is the same URL Issuer.discover(issuer) would derive.
  const wellKnown = `${cfg.issuer}/.well-known/openid-configuration`;
  let issuer;
  try {
    issuer = await Issuer.discover(wellKnown);
  } catch (err) {
    logError(`discovery of ${wellKnown}`, err);
    process.exit(1);
  }
  log(`discovered issuer ${issuer.issuer}`);
  if (!issuer.token_endpoint) {
    log('error: discovery document has no token_endpoint');
    process.exit(1);
  }
  const tokenEndpoint = new URL(issuer.token_endpoint);
  tokenEndpointPath = `${tokenEndpoint.pathname}${tokenEndpoint.search}`;

  let client = null;
  let callbackUrl = null;

  async function handleStart(req, res, url) {
    const codeVerifier = generators.codeVerifier();
    const state = generators.state();
    const nonce = cfg.useNonce ? generators.nonce() : undefined;
    const params = {
      scope: SCOPE,
      code_challenge: generators.codeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    };
    if (nonce !== undefined) params.nonce = nonce;
    const loginHint = url.searchParams.get('login_hint');
    if (loginHint !== null) params.login_hint = loginHint;

    const cookies = [setCookie(COOKIE_PKCE, codeVerifier), setCookie(COOKIE_STATE, state)];
    cookies.push(nonce !== undefined ? setCookie(COOKIE_NONCE, nonce) : clearCookie(COOKIE_NONCE));

    res.writeHead(302, {
      Location: client.authorizationUrl(params),
      'Set-Cookie': cookies,
      'Cache-Control': 'no-store',
      'Content-Length': 0,
    });
    res.end();
  }

  async function handleCallback(req, res) {
    const cookies = parseCookies(req.headers.cookie);
    // Whatever happens, the check cookies are single-use (as in next-auth).
    const clear = [clearCookie(COOKIE_PKCE), clearCookie(COOKIE_STATE), clearCookie(COOKIE_NONCE)];
    const slot = {};
    try {
      const codeVerifier = cookies[COOKIE_PKCE];
      const state = cookies[COOKIE_STATE];
      const nonce = cookies[COOKIE_NONCE];
      if (!codeVerifier) throw missingCheck(COOKIE_PKCE);
      if (!state) throw missingCheck(COOKIE_STATE);
      if (cfg.useNonce && !nonce) throw missingCheck(COOKIE_NONCE);
      const checks = { code_verifier: codeVerifier, state };
      if (cfg.useNonce) checks.nonce = nonce;

      const result = await captureContext.run(slot, async () => {
        const params = client.callbackParams(req);
        const tokenSet = await client.callback(callbackUrl, params, checks);
        // Passing the TokenSet (not just the access token string) is what next-auth does when it
        // calls userinfo, and it is stricter: openid-client then uses the received token_type as
        // the Authorization scheme and requires userinfo.sub to equal the ID token's sub.
        const userinfo = await client.userinfo(tokenSet);
        return { tokenSet, userinfo };
      });

      const raw = rawTokenResponse(slot);
      sendJson(
        res,
        200,
        {
          claims: result.tokenSet.claims(),
          userinfo: result.userinfo,
          token_response_keys: Object.keys(raw).sort(),
          expires_in: 'expires_in' in raw ? raw.expires_in : null,
          token_type: 'token_type' in raw ? raw.token_type : null,
          scope: 'scope' in raw ? raw.scope : null,
        },
        { 'Set-Cookie': clear },
      );
    } catch (err) {
      logError('callback', err);
      sendJson(res, 500, errorPayload(err), { 'Set-Cookie': clear });
    }
  }

  const server = http.createServer(async (req, res) => {
    let url;
    try {
      url = new URL(req.url, 'http://127.0.0.1');
    } catch {
      sendJson(res, 400, { error: 'BadRequest', message: 'unparseable request target' });
      return;
    }
    try {
      if (req.method === 'GET' && url.pathname === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
        res.end('ok');
      } else if (req.method === 'GET' && url.pathname === '/start') {
        await handleStart(req, res, url);
      } else if (req.method === 'GET' && url.pathname === CALLBACK_PATH) {
        await handleCallback(req, res);
      } else {
        sendJson(res, 404, { error: 'NotFound', message: `no route for ${req.method} ${url.pathname}` });
      }
    } catch (err) {
      logError(url.pathname, err);
      if (!res.headersSent) sendJson(res, 500, errorPayload(err));
      else res.destroy();
    } finally {
      // Path only: the callback query carries the authorization code.
      log(`${req.method} ${url.pathname} -> ${res.statusCode}`);
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const origin = `http://${cfg.publicHost}:${port}`;
  callbackUrl = `${origin}${CALLBACK_PATH}`;

  // Exactly what next-auth v4 builds (core/lib/oauth/client.ts) for Langfuse's provider, plus the
  // explicit response_types / id_token_signed_response_alg (both are openid-client's defaults).
  client = new issuer.Client({
    client_id: cfg.clientId,
    client_secret: cfg.clientSecret,
    redirect_uris: [callbackUrl],
    response_types: ['code'],
    token_endpoint_auth_method: cfg.authMethod,
    id_token_signed_response_alg: cfg.alg,
  });
  // next-auth v4: "allow a 10 second skew".
  client[custom.clock_tolerance] = 10;

  let stopping = false;
  function shutdown(signal) {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (cfg.exitOnStdinEof) {
    // Lets a test that holds our stdin pipe get rid of us even if it dies without a SIGTERM.
    process.stdin.on('end', () => shutdown('stdin EOF'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }

  log(`client_id configured, auth method ${cfg.authMethod}, nonce ${cfg.useNonce ? 'yes' : 'no'}, alg ${cfg.alg}`);
  log(`callback ${callbackUrl}`);
  process.stdout.write(`LISTENING ${origin}\n`);
}

main().catch((err) => {
  logError('startup', err);
  process.exit(1);
});
