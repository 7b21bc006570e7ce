'use strict';

/*
 * Takes the screenshots of the README: the page on a desktop and on a phone, in a room and
 * with the "You are not in the chatroom" dialog (the room opened in another tab). Starts its
 * own redis-server with the presence module and demo server, like the tests (REDIS_SERVER,
 * PRESENCE_MODULE), and drives Debian's /usr/bin/chromium with playwright-core.
 *
 *   node scripts/screenshots.js [output directory, default docs/]
 */
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startRedis } = require('../test/support/shared');
const { startDemo } = require('../test/support/demo-server');
const { nameToId } = require('../public/names');
const { CHROMIUM, CHROMIUM_ARGS } = require('../test/support/browser');

const ROOM = 'Design review';
const OTHERS = ['Ana María', 'José', 'Łukasz Nowak', 'Oluwaseun Adeyemi', 'Zoë', 'Priya', 'Tomás'];
/** The others whose tab is hidden: the list shows them away. */
const AWAY = new Set(['José', 'Priya']);
const VIEWPORTS = {
  desktop: { width: 1024, height: 700 },
  phone: { width: 360, height: 740 },
};

/** A page of its own (a browser context) joined to the room as `name`. */
async function joinPage(browser, url, viewport, name) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(url);
  await page.fill('#name', name);
  await page.fill('#room', ROOM);
  await page.click('#join');
  await page.locator('#users li.me').waitFor();
  await page.mouse.move(0, 0);
  return page;
}

/** The joined page, then the dialog it shows when the same name joins from another tab. */
async function shoot(browser, url, kind, dir) {
  const page = await joinPage(browser, url, VIEWPORTS[kind], 'Alice');
  await page.waitForFunction((n) => document.querySelectorAll('#users li').length === n, OTHERS.length + 1);
  await page.screenshot({ path: path.join(dir, `${kind}-joined.png`), fullPage: kind === 'phone' });
  const other = await joinPage(browser, url, VIEWPORTS[kind], 'Alice');
  await page.locator('dialog#force-leave-dialog[open]').waitFor();
  await page.mouse.move(0, 0);
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(dir, `${kind}-popup.png`) });
  await other.context().close();
  await page.context().close();
}

async function main() {
  const dir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'docs'));
  fs.mkdirSync(dir, { recursive: true });
  const redis = await startRedis({ staleAfter: 30 });
  const demo = await startDemo({ redisUrl: redis.url });
  const others = [];
  let browser;
  try {
    for (const name of OTHERS) {
      const client = await demo.connect({ name }, { heartbeatIntervalMs: 5000 });
      others.push(client);
      await client.join(nameToId(ROOM).id, { data: { status: AWAY.has(name) ? 'away' : 'here' } });
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    for (const kind of Object.keys(VIEWPORTS)) await shoot(browser, demo.url, kind, dir);
    console.log(`screenshots written to ${dir}`);
  } finally {
    if (browser) await browser.close();
    for (const client of others) client.close();
    await demo.stop('SIGKILL');
    await redis.stop();
  }
}

main().catch((err) => {
  console.error(err.stack);
  process.exitCode = 1;
});
