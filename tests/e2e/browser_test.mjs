// The browser half of the end-to-end test; run.sh starts the processes and passes them in E2E_*.
// A person's path through the example shop in headless Chromium, across two webapp instances that
// share one SessionServer fleet, through the loss of the server that owns the session:
//   1. webapp A `/`: sign in as "ada" through the HTML form (the session lives on server 1, the
//      only server running);
//   2. webapp B `/cart` (cookies ignore the port, so the session follows): add two items through
//      the HTML form; wait until server 1 has written the session behind to Redis;
//   3. start server 2, SIGKILL server 1, reload the cart on B and on A: user and items are there
//      (served by server 2, restored from Redis), in the pages and in GET /api/cart;
//   4. sign out through the header's form: signed out, cart empty, on both webapps.
// Exits 0 on success; on failure prints why, saves $E2E_TMP/failure.png, exits 1.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = await import(path.join(here, 'node_modules/playwright-core/index.mjs'));

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through tests/e2e/run.sh`);
  return v;
}
const A = env('E2E_WEBAPP_A');
const B = env('E2E_WEBAPP_B');
const TMP = env('E2E_TMP');
const REDIS_PORT = env('E2E_REDIS_PORT');
const SERVER1_PID = Number(env('E2E_SERVER1_PID'));
const SERVER2_PORT_HOLDER_PID = Number(env('E2E_SERVER2_PORT_HOLDER_PID'));
const SERVER2_CMD = JSON.parse(env('E2E_SERVER2_CMD'));
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';

const USER = 'ada';
// The second item checks that the page escapes what it shows (it must appear as typed).
const ITEMS = ['tea pot', 'scones <b>&</b> "jam"'];

const t0 = Date.now();
function step(text) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${text}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` (sync or async) until it returns a truthy value; throws `what` after `ms`.
async function until(what, fn, ms = 10000, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by run.sh) counts as gone.
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
}

// Whether some live session in Redis holds `needles`: a hash ss:v1:<id> whose field `r` (the
// record, docs/REDIS_SCHEMA.md) carries the attribute bytes as they are.
function redisHasSession(needles) {
  const cli = (...args) =>
    execFileSync('redis-cli', ['-p', REDIS_PORT, ...args], { encoding: 'latin1', timeout: 5000 });
  const keys = cli('--scan').split('\n').filter(Boolean);
  return keys.some((key) => {
    let v = '';
    try {
      v = cli('HGET', key, 'r');
    } catch {
      return false; // not a hash
    }
    const bytes = Buffer.from(v, 'latin1').toString('utf8');
    return needles.every((n) => bytes.includes(n));
  });
}

// ---- the page, read as a person would ----
async function heading(page) {
  return (await page.locator('main h1').first().textContent()).trim();
}
async function headerText(page) {
  return (await page.locator('header').textContent()).replace(/\s+/g, ' ').trim();
}
async function cartItems(page) {
  return page.locator('main ol li').allTextContents();
}
async function expectCartPage(page, { user, items }) {
  assert.equal(await heading(page), 'Your cart');
  const header = await headerText(page);
  assert.ok(header.includes(`Cart (${items.length})`), `header "${header}"`);
  if (user) {
    assert.ok(header.includes(`signed in as ${user}`), `header "${header}" lacks the user`);
  } else {
    assert.ok(header.includes('not signed in'), `header "${header}" shows a user`);
  }
  assert.deepEqual(await cartItems(page), items);
  if (items.length === 0) {
    assert.equal((await page.locator('main p').first().textContent()).trim(), 'The cart is empty.');
  }
}
async function expectApiCart(page, base, want) {
  const r = await page.request.get(`${base}/api/cart`);
  assert.equal(r.status(), 200, `GET ${base}/api/cart: ${r.status()} ${await r.text()}`);
  assert.deepEqual(await r.json(), want);
}
async function goto(page, url) {
  const r = await page.goto(url);
  assert.equal(r.status(), 200, `GET ${url}: ${r.status()} ${await r.text()}`);
}
// Clicks a form's button and waits for the page its POST redirects to.
async function submit(page, buttonName, wantPath) {
  const [post, next] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.waitForResponse(
      (r) => r.request().method() === 'GET' && new URL(r.url()).pathname === wantPath,
    ),
    page.getByRole('button', { name: buttonName }).click(),
  ]);
  assert.equal(post.status(), 303, `POST ${post.url()}: ${post.status()}`);
  assert.equal(next.status(), 200, `GET ${next.url()} after the POST: ${next.status()}`);
  await page.waitForURL((u) => u.pathname === wantPath);
  await page.waitForLoadState('load');
}

let browser;
let server2;
let page;
const watchdog = setTimeout(() => {
  console.error('browser_end_to_end: the browser test took over 45 s');
  if (server2) server2.kill('SIGKILL');
  process.exit(1);
}, 45000);

try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 20000 });
  const context = await browser.newContext();
  context.setDefaultTimeout(10000);
  page = await context.newPage();
  step(`Chromium ${browser.version()} up`);

  // 1. Sign in on webapp A through the form.
  await goto(page, `${A}/`);
  assert.equal(await heading(page), 'Welcome');
  assert.ok((await headerText(page)).includes('not signed in'));
  await page.getByLabel('Name').fill(USER);
  await submit(page, 'Sign in', '/');
  assert.equal(new URL(page.url()).origin, A);
  assert.equal(await heading(page), `Hello, ${USER}`);
  assert.ok((await headerText(page)).includes(`signed in as ${USER}`));
  const cookies = await context.cookies(A);
  const session = cookies.find((c) => c.name === 'ss_session');
  assert.ok(session, `no ss_session cookie: ${JSON.stringify(cookies)}`);
  assert.equal(session.httpOnly, true, 'the session cookie must be HttpOnly');
  assert.equal(session.secure, false, '--insecure_cookies: no Secure attribute');
  step(`signed in as ${USER} on webapp A`);

  // 2. The cart on webapp B: same host, other port; the cookie (and so the session) follows.
  await goto(page, `${B}/cart`);
  await expectCartPage(page, { user: USER, items: [] });
  for (let i = 0; i < ITEMS.length; ++i) {
    await page.getByLabel('Item').fill(ITEMS[i]);
    await submit(page, 'Add to cart', '/cart');
    assert.equal(new URL(page.url()).origin, B);
    await expectCartPage(page, { user: USER, items: ITEMS.slice(0, i + 1) });
  }
  step(`added ${ITEMS.length} items on webapp B`);

  // Server 1 writes changes behind to Redis (--write_behind_delay_ms=10): wait until it has.
  await until('the session (user and both items) in Redis', () =>
    redisHasSession([USER, ...ITEMS]),
  );
  step('the session is in Redis');

  // 3. Start server 2, then kill the owner, server 1, with SIGKILL.
  process.kill(SERVER2_PORT_HOLDER_PID, 'SIGTERM'); // frees server 2's port
  await until("server 2's port holder to exit", () => !alive(SERVER2_PORT_HOLDER_PID));
  const log = fs.openSync(path.join(TMP, 'server2.log'), 'a');
  server2 = spawn(SERVER2_CMD[0], SERVER2_CMD.slice(1), { stdio: ['ignore', log, log] });
  fs.writeFileSync(path.join(TMP, 'server2.pid'), `${server2.pid}\n`);
  let server2Exit = null;
  server2.on('exit', (code, signal) => (server2Exit = { code, signal }));
  await until('server 2 to listen', () => {
    if (server2Exit) throw new Error(`server 2 exited: ${JSON.stringify(server2Exit)}`);
    return fs.existsSync(path.join(TMP, 'server2.port'));
  });
  step('server 2 up');
  process.kill(SERVER1_PID, 'SIGKILL');
  await until('server 1 to die', () => !alive(SERVER1_PID));
  step('server 1 killed (SIGKILL)');

  const reloaded = await page.reload();
  assert.equal(reloaded.status(), 200, `reload of ${page.url()}: ${reloaded.status()}`);
  await expectCartPage(page, { user: USER, items: ITEMS });
  await expectApiCart(page, B, { user: USER, items: ITEMS });
  await goto(page, `${A}/cart`);
  await expectCartPage(page, { user: USER, items: ITEMS });
  await expectApiCart(page, A, { user: USER, items: ITEMS });
  step('after the kill: user and both items still there, on webapp B and A');

  // 4. Sign out (the header's form, on A): signed out, and the cart is gone on both webapps.
  await submit(page, 'Sign out', '/');
  assert.equal(await heading(page), 'Welcome');
  assert.ok((await headerText(page)).includes('not signed in'));
  assert.ok((await headerText(page)).includes('Cart (0)'));
  await goto(page, `${A}/cart`);
  await expectCartPage(page, { user: '', items: [] });
  await goto(page, `${B}/cart`);
  await expectCartPage(page, { user: '', items: [] });
  await expectApiCart(page, B, { user: '', items: [] });
  step('signed out: no user, empty cart on webapp A and B');

  await browser.close();
  browser = undefined;

  // Server 2 stops cleanly on SIGTERM (under ASan this also checks its leaks).
  server2.kill('SIGTERM');
  await until('server 2 to exit after SIGTERM', () => server2Exit, 10000);
  assert.deepEqual(server2Exit, { code: 0, signal: null }, 'server 2 exit after SIGTERM');
  step('server 2 stopped cleanly');
  console.log('browser_end_to_end: 1 passed, 0 failed');
  clearTimeout(watchdog);
} catch (e) {
  console.error(`browser_end_to_end: FAILED: ${e && e.stack ? e.stack : e}`);
  if (page) {
    try {
      console.error(`page ${page.url()}:\n${(await page.content()).slice(0, 2000)}`);
      await page.screenshot({ path: path.join(TMP, 'failure.png'), timeout: 5000 });
      console.error(`screenshot: ${path.join(TMP, 'failure.png')}`);
    } catch {
      // the page itself may be what failed
    }
  }
  if (browser) await browser.close().catch(() => {});
  if (server2 && server2.exitCode === null) server2.kill('SIGKILL');
  console.log('browser_end_to_end: 0 passed, 1 failed');
  process.exit(1);
}
process.exit(0);
