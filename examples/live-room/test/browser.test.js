'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startRedis, waitFor, SCRIPT_ENGINE, reconcileRoom } = require('./support/shared');
const { sweepCounters } = require('./support/scenarios');
const { startDemo } = require('./support/demo-server');
const { CHROMIUM, CHROMIUM_ARGS } = require('./support/browser');
const { nameToId } = require('../public/names');
const { profileOf } = require('../lib/profiles');

const OUTPUT_DIR = path.join(__dirname, '..', 'test-output');
const TITLE = 'You are not in the chatroom';

function launch() {
  assert.ok(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: install it with apt-get install -y chromium`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A new page (in `context`, or in a context of its own) joined to `room` as `name`. */
async function joinedPage(target, url, name, room, viewport) {
  const page = await target.newPage(viewport ? { viewport } : undefined);
  page.setDefaultTimeout(20000);
  await page.goto(url);
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.click('#join');
  await page.locator('#users li.me').waitFor();
  return page;
}

/** The dialog, found by its role and accessible name; resolves once it is open. */
async function removalDialog(page) {
  const dialog = page.getByRole('dialog', { name: TITLE });
  await dialog.waitFor();
  return dialog;
}

async function shot(page, name) {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`) });
}

/**
 * Joins a room in a real page, kills the demo server (SIGKILL) and starts it again: the
 * dialog says that the connection was interrupted; "Join again" joins again.
 */
async function killRestartRejoin({ env, prefix }) {
  const redis = await startRedis({ staleAfter: 3, sweepIntervalMs: 100 });
  const demo = await startDemo({ redisUrl: redis.url, env });
  const browser = await launch();
  try {
    const page = await joinedPage(browser, demo.url, 'alice', 'lobby');
    assert.equal(await page.textContent('#count'), '1');

    await demo.stop('SIGKILL');
    await demo.start();
    const dialog = await removalDialog(page);
    assert.equal((await page.textContent('#force-leave-message')).trim(), TITLE);
    assert.match(await page.textContent('#force-leave-reason'), /connection to the server was interrupted .* your place in lobby was not kept/);
    assert.equal((await page.textContent('#rejoin')).trim(), 'Join again');
    await shot(page, `${prefix}force-leave-dialog`);

    await page.click('#rejoin');
    await dialog.waitFor({ state: 'hidden' });
    await page.locator('#users li.me', { hasText: 'alice' }).waitFor();
    await page.waitForFunction(() => document.getElementById('count').textContent === '1');
    await shot(page, `${prefix}joined-again`);
    const admin = await redis.client();
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'lobby']), [profileOf('alice').userId]);
  } finally {
    await browser.close();
    await demo.stop('SIGKILL');
    await redis.stop();
  }
}

describe('browser: a server crash', () => {
  it('join, server killed and restarted: the dialog says the connection was interrupted; join again', async () => {
    await killRestartRejoin({ env: { PING_INTERVAL_MS: 1000, PING_TIMEOUT_MS: 1000, HEARTBEAT_INTERVAL_MS: 1000 }, prefix: '' });
  });

  it('default timings and a new random SESSION_SECRET after the restart: the page logs in again and shows the dialog', async () => {
    await killRestartRejoin({ env: { SESSION_SECRET: '' }, prefix: 'default-timings-' });
  });

  it('the server stopped (SIGSTOP) longer than its node lease: the dialog says it stopped unexpectedly; join again', async () => {
    const leaseMs = 2000;
    const redis = await startRedis({ staleAfter: 90, sweepIntervalMs: 100 });
    const demo = await startDemo({ redisUrl: redis.url, env: { NODE_LEASE_MS: leaseMs } });
    const browser = await launch();
    let stopped = false;
    try {
      const page = await joinedPage(browser, demo.url, 'alice', 'lobby');
      const admin = await redis.client();
      demo.process.kill('SIGSTOP');
      stopped = true;
      // Resumed once its lease has ended and the module's sweeper removed its presence as
      // node-down. The script engine's sweep runs in the app servers: with the only one stopped,
      // nothing sweeps (its reads still apply the rule), so it is resumed once the lease ended,
      // and finds its own presences ended.
      const leaseEnded = async () => Number(await admin.sendCommand(['EXISTS', `presence:node:${demo.nodeId}`])) === 0;
      const nodeDown = async () => sweepCounters(await admin.sendCommand(['INFO', 'presence'])).nodeDown === 1;
      await waitFor(SCRIPT_ENGINE ? leaseEnded : nodeDown, { timeoutMs: 30000, message: 'the presence removed as node-down' });
      demo.process.kill('SIGCONT');
      stopped = false;

      const dialog = await removalDialog(page);
      assert.equal(
        await page.textContent('#force-leave-reason'),
        'The server you were connected to stopped unexpectedly, so everyone on it left lobby.',
      );
      assert.equal((await page.textContent('#rejoin')).trim(), 'Join again');
      await shot(page, 'node-down-dialog');
      await page.click('#rejoin');
      await dialog.waitFor({ state: 'hidden' });
      await page.locator('#users li.me', { hasText: 'alice' }).waitFor();
      assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'lobby']), [profileOf('alice').userId]);
    } finally {
      if (stopped) demo.process.kill('SIGCONT');
      await browser.close();
      await demo.stop('SIGKILL');
      await redis.stop();
    }
  });
});

describe('browser: the page', () => {
  let redis;
  let admin;
  let demo;
  let browser;

  before(async () => {
    redis = await startRedis({ staleAfter: 30 });
    admin = await redis.client();
    demo = await startDemo({ redisUrl: redis.url });
    browser = await launch();
  });

  after(async () => {
    if (browser) await browser.close();
    if (demo) await demo.stop('SIGKILL');
    if (redis) await redis.stop();
  });

  it('the same name in a second tab: the first says why, and "Use here" takes the room back', async () => {
    const context = await browser.newContext();
    try {
      const first = await joinedPage(context, demo.url, 'Ana María', 'Design review');
      const second = await joinedPage(context, demo.url, 'Ana María', 'Design review');
      const dialog = await removalDialog(first);
      assert.equal(
        await first.textContent('#force-leave-reason'),
        'Design review is open in another tab or on another device. You can be in a room from one place at a time.',
      );
      assert.equal(await first.textContent('#rejoin'), 'Use here');
      assert.match(await first.textContent('#status'), /^You are not in the chatroom\. Design review is open in another tab/);

      await dialog.getByRole('button', { name: 'Use here' }).click();
      await first.locator('#users li.me').waitFor();
      await removalDialog(second);
      assert.equal(await second.textContent('#rejoin'), 'Use here');
      assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', nameToId('Design review').id]), [profileOf('Ana María').userId]);
      assert.equal(await first.textContent('#count'), '1');
      assert.equal(await first.textContent('#users li.me .person-name'), 'Ana María');
    } finally {
      await context.close();
    }
  });

  it('after closing the dialog the page shows the others still in the room', async () => {
    const context = await browser.newContext();
    try {
      const alice = await joinedPage(context, demo.url, 'alice', 'stage');
      await joinedPage(await browser.newContext(), demo.url, 'José', 'stage');
      await alice.waitForFunction(() => document.getElementById('count').textContent === '2');
      await admin.sendCommand(['DEL', `room:presence:stage:${profileOf('alice').userId}`]);
      // The module sees the DEL as it happens; on the script engine, an operator reconciles.
      await reconcileRoom(admin, redis.url, 'stage');
      const dialog = await removalDialog(alice);
      assert.equal(await alice.textContent('#force-leave-reason'), 'You were removed from stage by the server.');
      await dialog.getByRole('button', { name: 'Close' }).click();
      await alice.locator('#outside').waitFor();
      await alice.waitForFunction(() => document.getElementById('count').textContent === '1');
      assert.deepEqual(await alice.locator('#users li .person-name').allTextContents(), ['José']);
      assert.equal(await alice.textContent('#outside-text'), 'You are not in this room.');
      await shot(alice, 'outside-after-dialog');
    } finally {
      await context.close();
    }
  });

  it('on a phone, a 128-character name wraps and the page never scrolls sideways; the count and list are live regions', async () => {
    const failed = [];
    const context = await browser.newContext({ viewport: { width: 320, height: 640 } });
    try {
      const longName = 'W'.repeat(128);
      const page = await context.newPage();
      page.on('response', (res) => {
        if (res.status() >= 400) failed.push(`${res.status()} ${res.url()}`);
      });
      await page.goto(demo.url);
      await page.fill('#name', 'x'.repeat(300));
      await page.click('#join');
      assert.match(await page.textContent('#name-error'), /^That name is too long/);
      assert.equal(await page.isVisible('#room-view'), false);

      await page.fill('#name', longName);
      await page.fill('#room', 'phones');
      await page.click('#join');
      await page.locator('#users li.me').waitFor();
      const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));
      assert.ok(widths.page <= widths.window, `page ${widths.page} px wide in a ${widths.window} px window`);
      assert.equal(await page.textContent('#users li.me .person-name'), longName);
      await shot(page, 'phone-long-name');

      assert.equal(await page.locator('#count').evaluate((node) => node.closest('[aria-live]').getAttribute('aria-live')), 'polite');
      assert.equal(await page.getAttribute('#users', 'aria-live'), 'polite');
      assert.deepEqual(failed, []);
    } finally {
      await context.close();
    }
  });
});
