'use strict';

// The demo's presence data: a person's display name and avatar hue come from their login
// (the user id is opaque), the status "away" from their page while its tab is hidden; clients
// that send no data keep working and are listed by their id. Runs against any redis-server
// (REDIS_SERVER) that loads the module (PRESENCE_MODULE), like the other tests.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startRedis, waitFor } = require('./support/shared');
const { startDemo } = require('./support/demo-server');
const { CHROMIUM, CHROMIUM_ARGS } = require('./support/browser');
const { profileOf } = require('../lib/profiles');

const OUTPUT_DIR = path.join(__dirname, '..', 'test-output');

describe('presence data in the demo', () => {
  let redis;
  let admin;
  let demo;
  const clients = [];

  const connect = async (user) => {
    const client = await demo.connect(user);
    clients.push(client);
    return client;
  };
  const memberOf = (event, userId) => event && event.members.find((member) => member.userId === userId);

  before(async () => {
    redis = await startRedis({ staleAfter: 30 });
    admin = await redis.client();
    demo = await startDemo({ redisUrl: redis.url });
  });

  after(async () => {
    for (const client of clients) client.close();
    if (demo) await demo.stop('SIGKILL');
    if (redis) await redis.stop();
  });

  it('a login by name gets an opaque user id; the name travels in the token, not the id', async () => {
    const ana = await demo.login('  Ana   María ');
    assert.match(ana.userId, /^u-[A-Za-z0-9_-]{22}$/);
    assert.equal(ana.userId, profileOf('Ana María').userId);
    assert.equal((await demo.login('Ana María')).userId, ana.userId, 'the same name is the same person');
    assert.notEqual((await demo.login('Ana Maria')).userId, ana.userId);
    for (const query of ['name=', 'name=%20%20', `name=${'x'.repeat(129)}`, 'name=ana&user=ana']) {
      const res = await fetch(`${demo.url}/api/token?${query}`);
      assert.equal(res.status, 400, query);
      assert.deepEqual(await res.json(), { error: 'invalid-name' });
    }
    const byId = await fetch(`${demo.url}/api/token?user=bob`);
    assert.equal(byId.status, 200, 'the login by user id stays');
    assert.equal((await byId.json()).userId, 'bob');
  });

  it('stores the name and hue of the login, whatever the page claims; members in the ack', async () => {
    const ana = await connect({ name: 'Ana María' });
    const { userId, hue } = profileOf('Ana María');
    const ack = await ana.join('d-claim', { data: { name: 'Mallory', hue: 7, role: 'admin', status: 'away' } });
    assert.deepEqual(ack.members, [{ userId, data: { name: 'Ana María', hue, status: 'away' } }]);
    assert.deepEqual(ack.users, [userId]);
    const update = await ana.presence.update('d-claim', { name: 'Mallory', status: 'here' });
    assert.deepEqual(update, { ok: true, data: { name: 'Ana María', hue, status: 'here' } });
    assert.deepEqual(JSON.parse(await admin.sendCommand(['GET', `room:presence-data:d-claim:${userId}`])), {
      name: 'Ana María',
      hue,
      status: 'here',
    });
  });

  it('a client that sends no data is listed by its id; an update reaches the others once', async () => {
    const bob = await connect('bob');
    const jose = await connect({ name: 'José' });
    const jo = profileOf('José');
    assert.equal((await bob.join('d-mixed')).ok, true);
    assert.equal((await jose.join('d-mixed')).ok, true);
    await bob.waitForUsers('d-mixed', ['bob', jo.userId].sort());
    await bob.waitForQuiet(400);
    assert.deepEqual(memberOf(bob.lastParticipants('d-mixed'), 'bob'), { userId: 'bob', data: null });
    const room = await (await fetch(`${demo.url}/api/room?id=d-mixed`)).json();
    assert.deepEqual(room.members, [
      { userId: 'bob', data: null },
      { userId: jo.userId, data: { name: 'José', hue: jo.hue, status: 'here' } },
    ]);

    assert.equal((await jose.presence.update('d-mixed', { status: 'away' })).ok, true);
    const away = (event) => memberOf(event, jo.userId)?.data.status === 'away';
    await waitFor(() => away(bob.lastParticipants('d-mixed')), { message: 'José away' });
    await bob.waitForQuiet(400);
    assert.equal(bob.participants.filter(away).length, 1, 'one room:participants for one update');

    // A client logged in by id may still say it is away; it is listed by its id.
    assert.deepEqual(await bob.presence.update('d-mixed', { status: 'away' }), { ok: true, data: { status: 'away' } });
    assert.deepEqual(await bob.presence.update('d-mixed', { status: 'asleep', name: 'Bob' }), { ok: true, data: { status: 'here' } });
  });

  it('a page shows names and "away" while the other tab is hidden, on a desktop and on a phone', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    try {
      const desktop = await joinedPage(browser, demo.url, 'Ana María', 'Design review', { width: 1024, height: 700 });
      const phone = await joinedPage(browser, demo.url, 'Łukasz Nowak', 'Design review', { width: 360, height: 740 });
      for (const [page, other] of [
        [desktop, 'Łukasz Nowak'],
        [phone, 'Ana María'],
      ]) {
        await page.locator('#users li', { hasText: other }).waitFor();
        assert.deepEqual(await page.locator('#users li .person-name').allTextContents(), [
          page === desktop ? 'Ana María' : 'Łukasz Nowak',
          other,
        ]);
        assert.equal(await page.locator('#users li .away-tag').count(), 0);
      }

      await setHidden(phone, true);
      const awayOnDesktop = desktop.locator('#users li.away', { hasText: 'Łukasz Nowak' });
      await awayOnDesktop.waitFor();
      assert.equal((await awayOnDesktop.locator('.away-tag').textContent()).trim(), 'away');
      await shot(desktop, 'data-desktop-other-away');
      await setHidden(phone, false);
      await awayOnDesktop.waitFor({ state: 'detached' });

      await setHidden(desktop, true);
      const awayOnPhone = phone.locator('#users li.away', { hasText: 'Ana María' });
      await awayOnPhone.waitFor();
      const widths = await phone.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));
      assert.ok(widths.page <= widths.window, `page ${widths.page} px wide in a ${widths.window} px window`);
      await shot(phone, 'data-phone-other-away');
      await setHidden(desktop, false);
      await awayOnPhone.waitFor({ state: 'detached' });
    } finally {
      await browser.close();
    }
  });
});

/** A page of its own (a browser context) at `viewport`, joined to `room` as `name`. */
async function joinedPage(browser, url, name, room, viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(url);
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.click('#join');
  await page.locator('#users li.me').waitFor();
  return page;
}

/**
 * Hides or shows the page's tab as far as the page can tell. Headless Chromium under
 * playwright keeps every page `visible` (switching tabs, minimizing the window and CDP's
 * lifecycle states do not change `document.visibilityState` there), so the browser's part is
 * emulated: `document.visibilityState` and `document.hidden` report the new state and the
 * document gets the `visibilitychange` event the browser would send. Everything after it is
 * real: the page's own handler, its `room:update`, the server, Redis and the other page.
 */
async function setHidden(page, hidden) {
  await page.evaluate((isHidden) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (isHidden ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => isHidden });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

async function shot(page, name) {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`) });
}
