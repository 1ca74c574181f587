// Drives baton's operator console in headless Chromium for the Rust end-to-end test.
//
// Environment: BATON_SERVER (http://127.0.0.1:PORT), BATON_KEY (an admin key), BATON_SHOTS (a
// directory for screenshots), CHROMIUM (default /usr/bin/chromium).
//
// Protocol, line by line on stdio: this script logs in and writes `ready`; then it reads one
// command a line and answers each with one line, `ok <json>` or `fail <message>` (and exits 1
// after a fail). Commands: `open <id>`, `watch <id>`, `refunded <id>`, `brake`, `release`, `sagas`,
// `outcomes`, `webhook <url>`, `inventory`, `changes`, `quit`. Every step leaves a numbered screenshot.
//
// A command fails on any uncaught error in the page, any console error (a CSP violation among
// them) and any failed API answer other than a rate limit (429), as well as on its own timeout.

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const server = required('BATON_SERVER').replace(/\/+$/, '');
const key = required('BATON_KEY');
const shots = required('BATON_SHOTS');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

/** Answers the test may tolerate: a key over its rate limit is told to wait, and the console does. */
const TOLERATED_STATUS = new Set([429]);

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stdout.write(`fail ${name} is not set\n`);
    process.exit(1);
  }
  return value;
}

const problems = [];
let shot = 0;
let browser = null;
let page = null;

function answer(line) {
  process.stdout.write(`${line.replace(/[\r\n]+/g, ' ')}\n`);
}

async function screenshot(name) {
  shot += 1;
  const file = path.join(shots, `${String(shot).padStart(2, '0')}-${name.replace(/[^a-z0-9-]+/gi, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true }).catch(() => {});
}

/** What the page shows, in a line: for a failure's message. */
async function showing() {
  try {
    return await page.evaluate(() => {
      const text = (sel) => (document.querySelector(sel) ? document.querySelector(sel).textContent.trim() : '');
      const bits = [`at ${location.hash || '/'}`];
      if (text('#error')) bits.push(`error: ${text('#error .code')} ${text('#error .message')}`);
      if (text('#saga-status')) bits.push(`status ${text('#saga-status')}`);
      if (text('#saga-outcome')) bits.push(`outcome ${text('#saga-outcome')}`);
      if (text('#brake-state')) bits.push(`brake ${text('#brake-state')}`);
      const nodes = [...document.querySelectorAll('svg#dag g.node')]
        .map((g) => `${g.dataset.step}:${g.dataset.state}/${g.dataset.comp}`);
      if (nodes.length) bits.push(`nodes ${nodes.join(' ')}`);
      bits.push(`page: ${(document.querySelector('main') || document.body).innerText.replace(/\s+/g, ' ').slice(0, 300)}`);
      return bits.join('; ');
    });
  } catch (e) {
    return `(the page could not be read: ${e.message})`;
  }
}

/**
 * Waits for `what` (a function run in the page, answering truthy) and answers its value; fails at
 * once on a problem in the page, or with what the page shows after `timeoutMs`.
 */
async function until(what, arg, timeoutMs, description) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await page.evaluate(what, arg);
    if (value) return value;
    if (problems.length) throw new Error(`${problems.join(' | ')} (while waiting for ${description})`);
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${description}; ${await showing()}`);
    }
    await page.waitForTimeout(100);
  }
}

/** Goes to a console route (a hash) without reloading the page. */
async function go(hash) {
  await page.evaluate((h) => { if (location.hash !== h) location.hash = h; }, hash);
}

const text = (sel) => page.evaluate((s) => {
  const el = document.querySelector(s);
  return el ? el.textContent.trim() : null;
}, sel);

const asId = (v) => (/^\d+$/.test(v) ? Number(v) : v);

/** The DAG as drawn: pivots and edges. */
function shape() {
  return page.evaluate(() => ({
    pivot: [...document.querySelectorAll('svg#dag g.node[data-pivot="true"]')].map((g) => g.dataset.step),
    edges: [...document.querySelectorAll('svg#dag path.edge')].map((p) => [p.dataset.from, p.dataset.to]),
  }));
}

/** Records every node's states of saga `id`'s DAG from before the page draws them, and opens it. */
async function record(id) {
    await page.evaluate((saga) => {
      if (window.__batonWatch) window.__batonWatch.observer.disconnect();
      const rec = { states: {}, comps: {}, sawSent: false };
      const push = (map, k, v) => {
        const seq = map[k] || (map[k] = []);
        if (seq[seq.length - 1] !== v) seq.push(v);
      };
      const sample = () => {
        for (const g of document.querySelectorAll(`svg#dag[data-saga="${CSS.escape(saga)}"] g.node`)) {
          push(rec.states, g.dataset.step, g.dataset.state);
          push(rec.comps, g.dataset.step, g.dataset.comp);
          if (g.dataset.state === 'sent') rec.sawSent = true;
        }
      };
      const observer = new MutationObserver(sample);
      observer.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-comp'] });
      window.__batonWatch = { saga, rec, observer };
      sample();
    }, id);
    await go(`#/saga/${encodeURIComponent(id)}`);
}

const commands = {
  /** Opens a saga's page, recording its DAG, and answers once every step is drawn. */
  async open(id) {
    if (!id) throw new Error('open needs a saga id');
    await record(id);
    const nodes = await until((saga) => document.querySelectorAll(`svg#dag[data-saga="${CSS.escape(saga)}"] g.node`).length,
      id, 30000, 'the saga\'s DAG');
    await screenshot(`open-${id.slice(0, 10)}`);
    return { nodes };
  },

  /** Watches a saga's DAG (recording since `open`, or from now) until it completes. */
  async watch(id) {
    if (!id) throw new Error('watch needs a saga id');
    const open = await page.evaluate((saga) => !!window.__batonWatch && window.__batonWatch.saga === saga, id);
    if (!open) await record(id);
    const deadline = Date.now() + 120000;
    let midway = false;
    for (;;) {
      const now = await page.evaluate(() => ({
        sawSent: window.__batonWatch.rec.sawSent,
        status: (document.querySelector('#saga-status') || {}).textContent || '',
      }));
      if (now.sawSent && !midway) {
        midway = true;
        await screenshot(`watch-${id.slice(0, 10)}-midway`);
      }
      if (now.status === 'completed') break;
      if (problems.length) throw new Error(problems.join(' | '));
      if (Date.now() > deadline) throw new Error(`timed out after 120 s waiting for the saga to complete; ${await showing()}`);
      await page.waitForTimeout(100);
    }
    // The stream's last events may land just after the view says completed.
    await page.waitForFunction(() => document.querySelector('ol#events li[data-kind="completed"]'), null, { timeout: 5000, polling: 100 })
      .catch(() => {});
    const rec = await page.evaluate(() => {
      window.__batonWatch.observer.disconnect();
      return window.__batonWatch.rec;
    });
    const { pivot, edges } = await shape();
    await screenshot(`watch-${id.slice(0, 10)}-completed`);
    return {
      states: rec.states,
      comps: rec.comps,
      outcome: await text('#saga-outcome'),
      pivot: pivot.map(asId),
      edges: edges.map(([a, b]) => [asId(a), asId(b)]),
      events: await page.locator('ol#events li').count(),
    };
  },

  /** Waits for a saga to be refunded and completed; answers each node as drawn. */
  async refunded(id) {
    if (!id) throw new Error('refunded needs a saga id');
    await go(`#/saga/${encodeURIComponent(id)}`);
    await until((saga) => {
      const svg = document.querySelector('svg#dag');
      const t = (s) => (document.querySelector(s) || {}).textContent;
      return svg && svg.dataset.saga === saga && t('#saga-outcome') === 'refunded' && t('#saga-status') === 'completed';
    }, id, 180000, 'outcome refunded and status completed');
    const nodes = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('svg#dag g.node')].map((g) => [
      g.dataset.step, { action: g.dataset.action, state: g.dataset.state, comp: g.dataset.comp }])));
    await screenshot(`refunded-${id.slice(0, 10)}`);
    return { nodes };
  },

  async brake() {
    await go('#/chains');
    await page.waitForSelector('#brake', { state: 'visible', timeout: 15000 });
    await until(() => ['engaged', 'released'].includes((document.querySelector('#brake-state') || {}).textContent), null, 15000, 'the brake state');
    await page.fill('#pause-reason', 'brake test from the console');
    await page.click('#brake');
    await page.waitForSelector('#brake-confirm', { state: 'visible', timeout: 5000 });
    await screenshot('brake-armed');
    await page.click('#brake-confirm');
    await until(() => (document.querySelector('#brake-state') || {}).textContent === 'engaged', null, 15000, 'the brake engaged');
    await until(() => !!document.querySelector('table#chains tbody tr[data-chain]'), null, 15000, 'the chains');
    await screenshot('brake-engaged');
    return {};
  },

  async release() {
    await go('#/chains');
    await page.waitForSelector('#release', { state: 'visible', timeout: 15000 });
    await until(() => !document.querySelector('#release').disabled, null, 15000, 'the release button enabled (brake engaged)');
    await page.click('#release');
    await until(() => (document.querySelector('#brake-state') || {}).textContent === 'released', null, 15000, 'the brake released');
    await screenshot('brake-released');
    return {};
  },

  async sagas() {
    await go('#/sagas');
    await until(() => !!document.querySelector('table#sagas[data-query]'), null, 15000, 'the saga list');
    await page.selectOption('#f-outcome', 'refunded');
    await until(() => /(^|&)outcome=refunded(&|$)/.test(document.querySelector('table#sagas').dataset.query), null, 15000,
      'the saga list filtered by outcome refunded');
    const ids = await page.evaluate(() => [...document.querySelectorAll('table#sagas tr[data-saga]')].map((tr) => tr.dataset.saga));
    await screenshot('sagas-refunded');
    await page.selectOption('#f-outcome', '');
    await until(() => !/(^|&)outcome=/.test(document.querySelector('table#sagas').dataset.query), null, 15000, 'the saga list unfiltered');
    return { ids };
  },

  async outcomes() {
    await go('#/outcomes');
    await until(() => !!document.querySelector('svg#chart-outcomes rect.bar'), null, 30000, 'a bar in the outcomes chart');
    const got = await page.evaluate(() => {
      const bars = { fulfilled: 0, refunded: 0, failed: 0 };
      for (const r of document.querySelectorAll('svg#chart-outcomes rect.bar')) bars[r.dataset.outcome] += Number(r.dataset.count);
      return { bars, latency: document.querySelectorAll('svg#chart-latency rect.bar').length };
    });
    await screenshot('outcomes');
    return got;
  },

  async webhook(url) {
    if (!url) throw new Error('webhook needs a URL');
    await go('#/webhooks');
    await page.waitForSelector('#wh-url', { state: 'visible', timeout: 15000 });
    await page.fill('#wh-url', url);
    await page.check('input.wh-topic[value="intent.fulfilled"]');
    await page.check('input.wh-topic[value="intent.refunded"]');
    await page.fill('#wh-description', 'from the console');
    await page.click('#wh-create');
    await page.waitForSelector('#wh-secret', { state: 'visible', timeout: 15000 }).catch(async () => {
      throw new Error(`no secret shown after registering; ${await showing()}`);
    });
    const created = await page.getAttribute('#wh-secret', 'data-webhook');
    await until((id) => !!document.querySelector(`table#webhooks tr[data-webhook="${CSS.escape(id)}"]`), created, 15000, 'the new endpoint listed');
    const secretShown = /whsec_/.test(await text('#wh-secret'));
    const rows = await page.locator('table#webhooks tbody tr[data-webhook]').count();
    await screenshot('webhook-created');
    return { secret_shown: secretShown, rows };
  },

  async inventory() {
    await go('#/inventory');
    await until(() => !!document.querySelector('table#inventory tr[data-chain][data-token]'), null, 15000, 'inventory rows');
    const rows = await page.locator('table#inventory tr[data-chain][data-token]').count();
    await screenshot('inventory');
    return { rows };
  },

  async changes() {
    await go('#/changes');
    await until(() => !!document.querySelector('table#versions tr[data-state="active"]')
      && !!document.querySelector('table#instances tr[data-instance]'), null, 15000, 'versions and instances');
    const out = await page.evaluate(() => ({
      versions: [...document.querySelectorAll('table#versions tr[data-version]')]
        .map((r) => ({ number: Number(r.dataset.version), state: r.dataset.state })),
      instances: [...document.querySelectorAll('table#instances tr[data-instance]')]
        .map((r) => ({ name: r.dataset.instance, running: r.dataset.running, lagging: r.dataset.lagging === 'true' })),
    }));
    await screenshot('changes');
    const active = out.versions.find((v) => v.state === 'active');
    await go(`#/version/${active.number}`);
    await until(() => !!document.querySelector('#version-state')
      && document.querySelectorAll('table#version-history tbody tr').length > 0, null, 15000, 'the version\'s record');
    out.record = await page.locator('table#version-history tbody tr').count();
    out.state = await text('#version-state');
    await screenshot('version');
    return out;
  },
};

async function quit(code) {
  if (browser) await browser.close().catch(() => {});
  process.exit(code);
}

async function fail(message) {
  answer(`fail ${message}`);
  if (page) await screenshot('failed');
  await quit(1);
}

function problemsSince() {
  return problems.length ? problems.join(' | ') : null;
}

async function start() {
  fs.mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`uncaught in the page: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const t = msg.text();
    // A failed API answer shows up here too; the response handler judges those.
    if (/^Failed to load resource: the server responded with a status of \d+/.test(t)) return;
    // An event stream that drops is picked up again by the console after its last event.
    if (/^Failed to load resource: net::/.test(t) && /\/v1\/intents\/[^/]+\/events$/.test(msg.location().url || '')) return;
    problems.push(/Content Security Policy/i.test(t) ? `CSP violation: ${t}` : `console error: ${t}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !TOLERATED_STATUS.has(r.status())) {
      problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url().replace(server, '')}`);
    }
  });
  // A violation report the console might not print.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      // eslint-disable-next-line no-console
      console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  await page.goto(`${server}/console`);
  await page.waitForSelector('#login-form', { timeout: 15000 });
  await page.fill('#key', key);
  await page.click('#login');
  await page.waitForFunction(() => {
    const w = document.querySelector('#whoami');
    return w && w.offsetParent !== null && w.textContent.trim() !== '';
  }, null, { timeout: 15000 }).catch(async () => {
    throw new Error(`not logged in; ${await showing()}`);
  });
  await screenshot('logged-in');
  const bad = problemsSince();
  if (bad) throw new Error(bad);
  answer('ready');
}

async function main() {
  try {
    await start();
  } catch (e) {
    await fail(`start: ${e.message}`);
  }
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const raw of rl) {
    const line = raw.trim();
    if (!line) continue;
    const [name, ...args] = line.split(/\s+/);
    if (name === 'quit') {
      await quit(0);
    }
    const command = Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : null;
    if (!command) await fail(`unknown command ${JSON.stringify(name)}`);
    let result;
    try {
      result = await command(...args);
    } catch (e) {
      await fail(`${line}: ${e.message}`);
    }
    const bad = problemsSince();
    if (bad) await fail(`${line}: ${bad}`);
    answer(`ok ${JSON.stringify(result)}`);
  }
  // The test closed our input: it is done with us.
  await quit(0);
}

main();
