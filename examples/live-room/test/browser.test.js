'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startRedis } = require('./support/shared');
const { startDemo } = require('./support/demo-server');

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT_DIR = path.join(__dirname, '..', 'test-output');
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Joins a room in a real page, kills the demo server (SIGKILL) and starts it again, waits for
 * the dialog "You are not in the chatroom", then joins again.
 */
async function killRestartRejoin({ env, screenshotPrefix }) {
  assert.ok(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: install it with apt-get install -y chromium`);
  const redis = await startRedis({ staleAfter: 3, sweepIntervalMs: 100 });
  const demo = await startDemo({ redisUrl: redis.url, env });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'presence-chromium-'));
  let browser;
  try {
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(20000);
    await page.goto(demo.url);
    await page.fill('#name', 'alice');
    await page.fill('#room', 'lobby');
    await page.click('#join');
    await page.locator('#users li', { hasText: 'alice' }).waitFor();
    assert.equal(await page.textContent('#count'), '1');

    await demo.stop('SIGKILL');
    await demo.start();
    const dialog = page.locator('dialog#force-leave-dialog[open]');
    await dialog.waitFor();
    assert.equal((await page.textContent('#force-leave-message')).trim(), 'You are not in the chatroom');
    assert.equal(await page.textContent('#count'), '0');
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT_DIR, `${screenshotPrefix}force-leave-dialog.png`) });

    await page.click('#rejoin');
    await dialog.waitFor({ state: 'detached' });
    await page.locator('#users li', { hasText: 'alice' }).waitFor();
    await page.waitForFunction(() => document.getElementById('count').textContent === '1');
    await page.screenshot({ path: path.join(OUTPUT_DIR, `${screenshotPrefix}joined-again.png`) });
    const admin = await redis.client();
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'lobby']), ['alice']);
  } finally {
    if (browser) await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    await demo.stop('SIGKILL');
    await redis.stop();
  }
}

test('browser: join, server killed and restarted, "You are not in the chatroom", join again', async () => {
  await killRestartRejoin({
    env: { PING_INTERVAL_MS: 1000, PING_TIMEOUT_MS: 1000, HEARTBEAT_INTERVAL_MS: 1000 },
    screenshotPrefix: '',
  });
});

test('browser: default timings and a new random SESSION_SECRET after the restart: the page logs in again and shows the dialog', async () => {
  await killRestartRejoin({ env: { SESSION_SECRET: '' }, screenshotPrefix: 'default-timings-' });
});
