// baton's operator console: one page, hash-routed, talking to the API with the key typed at login.
//
// Layout of this file: DOM and formatting helpers; the API client (errors, the event stream);
// pages and their lifecycle; login and the router; then one section per page (sagas, a saga with
// its DAG, chains, inventory, outcomes, webhooks, actions).
//
// Everything shown comes from the API and may be hostile (revert strings, reasons, URLs), so the
// DOM is built with createElement/createElementNS and textContent only, never from HTML strings.
// The key lives in sessionStorage and goes out only in the Authorization header.

'use strict';

const KEY = 'baton.key';
const SVG_NS = 'http://www.w3.org/2000/svg';
const ROLES = { dapp: 0, operator: 1, admin: 2 };
const TOPICS = [
  'intent.started', 'intent.tx_signed', 'intent.step_final', 'intent.step_failed',
  'intent.waiting', 'intent.compensating', 'intent.alert', 'intent.fulfilled',
  'intent.refunded', 'intent.failed', 'intent.completed', 'intent.retried',
  'intent.held', 'intent.resumed',
];
const SAGA_STATES = ['running', 'held', 'resumed', 'compensating', 'decided', 'retried', 'completed'];
const OUTCOMES = ['fulfilled', 'refunded', 'failed'];

const state = { me: null, page: null, errorSource: null };

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** An HTML element: `props` are attributes (`text` sets textContent, `on…` adds listeners). */
function h(tag, props, ...kids) {
  return build(document.createElement(tag), props, kids);
}

/** An SVG element, as `h`. */
function s(tag, props, ...kids) {
  return build(document.createElementNS(SVG_NS, tag), props, kids);
}

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'selected']);

function build(el, props, kids) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (PROPERTIES.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const $ = (sel, root) => (root || document).querySelector(sel);

/** A state word as a coloured badge. */
function badge(word, props) {
  const w = word === null || word === undefined || word === '' ? 'none' : String(word);
  return h('span', Object.assign({ class: `badge b-${w.replace(/[^a-z_]/g, '')}` }, props), w);
}

/** A table with a header row; rows go into its tbody. */
function table(id, headers) {
  return h('table', { id, class: 'grid' },
    h('thead', null, h('tr', null, headers.map(([label, cls]) => h('th', { class: cls }, label)))),
    h('tbody'));
}

function setRows(tbl, rows, empty) {
  const cols = tbl.tHead.rows[0].cells.length;
  tbl.tBodies[0].replaceChildren(...(rows.length ? rows
    : [h('tr', { class: 'empty' }, h('td', { colspan: cols }, empty || 'nothing yet'))]));
}

function td(content, cls, title) {
  return h('td', { class: cls, title }, content);
}

function panel(title, ...kids) {
  return h('section', { class: 'panel' }, title ? h('h2', null, title) : null, kids);
}

// ---------------------------------------------------------------------------------------------
// Formatting

const pad = (n) => String(n).padStart(2, '0');

function stamp(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function span(secs) {
  const s = Math.abs(Math.round(secs));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

function age(ms) {
  const secs = (Date.now() - ms) / 1000;
  return secs >= 0 ? `${span(secs)} ago` : `in ${span(secs)}`;
}

/** A time cell: local date and time, then how long ago. */
function when(ms) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'when', title: new Date(ms).toISOString() },
    h('span', { class: 'mono' }, stamp(ms)), ' ', h('span', { class: 'muted' }, age(ms)));
}

function seconds(n) {
  if (n === null || n === undefined) return '—';
  if (n < 10) return `${n.toFixed(2)} s`;
  if (n < 120) return `${n.toFixed(1)} s`;
  return span(n);
}

/** A long hex id shortened for display; the whole of it in the tooltip. */
function short(hex, keep) {
  const str = String(hex || '');
  const k = keep || 6;
  return str.length > 2 * k + 4 ? `${str.slice(0, k + 2)}…${str.slice(-k)}` : str;
}

function mono(text, full) {
  return h('span', { class: 'mono', title: full || null }, text === null || text === undefined ? '—' : String(text));
}

const dash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));
const outcomeWord = (o) => (o && o.outcome ? o.outcome : '');

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

function showError(err, source) {
  const box = $('#error');
  box.replaceChildren(
    h('strong', { class: 'code' }, err.code), ' ', h('span', { class: 'message' }, err.message),
    h('button', { class: 'link', title: 'Dismiss', onclick: () => clearError() }, '×'));
  box.hidden = false;
  state.errorSource = source || 'local';
}

/** Hides the error: any (no `source`), or only the one `source` raised. */
function clearError(source) {
  if (source && source !== state.errorSource) return;
  const box = $('#error');
  box.hidden = true;
  box.replaceChildren();
  state.errorSource = null;
}

function bearer(key) {
  return { Authorization: `Bearer ${key || sessionStorage.getItem(KEY) || ''}` };
}

/** One API call: the parsed answer, or an `ApiError` shown in #error (a 401 signs out). */
async function api(method, path, body, opts) {
  const o = opts || {};
  const headers = Object.assign({ Accept: 'application/json' }, bearer(o.key));
  const init = { method, headers, cache: 'no-store', signal: o.signal };
  if (body !== undefined && body !== null) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const source = `${method} ${path.split('?')[0]}`;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    showError({ code: 'network', message: `${source}: ${e.message}` }, source);
    throw new ApiError(0, 'network', e.message);
  }
  if (res.ok) {
    clearError(source);
    if (method !== 'GET') clearError('local');
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }
  const err = await errorOf(res);
  showError(err, source);
  if (res.status === 401) expire();
  throw new ApiError(res.status, err.code, err.message);
}

async function errorOf(res) {
  try {
    const b = await res.json();
    if (b && typeof b.code === 'string') return { code: b.code, message: String(b.message || '') };
  } catch (_) { /* not the API's error body */ }
  return { code: `http_${res.status}`, message: res.statusText || 'request failed' };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows an intent's Server-Sent Events with fetch (EventSource cannot send the key), calling
 * `onEvent({seq, kind, data})` for each; reconnects with Last-Event-ID while `more()` says so.
 */
async function follow(p, id, signal, onEvent, more) {
  const cursor = { last: null };
  let pause = 500;
  while (p.alive && !signal.aborted && more()) {
    const headers = Object.assign({ Accept: 'text/event-stream' }, bearer());
    if (cursor.last !== null) headers['Last-Event-ID'] = String(cursor.last);
    try {
      const res = await fetch(`/v1/intents/${encodeURIComponent(id)}/events`,
        { headers, cache: 'no-store', signal });
      if (!res.ok) {
        const err = await errorOf(res);
        showError(err, 'GET events');
        if (res.status === 401) return expire();
        if (res.status === 404 || res.status === 403) return undefined;
        pause = Math.max(pause, 1000 * (Number(res.headers.get('Retry-After')) || 2));
      } else {
        clearError('GET events');
        pause = 500;
        await readEvents(res.body, cursor, onEvent);
      }
    } catch (e) {
      if (!p.alive || signal.aborted) return undefined;
      // The stream dropped: pick it up after the last event seen.
    }
    await sleep(pause);
    pause = Math.min(pause * 2, 10000);
  }
  return undefined;
}

/** Reads one SSE response to its end, keeping the last event id seen in `cursor.last`. */
async function readEvents(body, cursor, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { id: null, kind: 'message', data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (ev.id !== null) cursor.last = ev.id;
        if (ev.data.length) onEvent({ seq: ev.id, kind: ev.kind, data: ev.data.join('\n') });
        ev = { id: null, kind: 'message', data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') ev.kind = val;
      else if (field === 'data') ev.data.push(val);
      else if (field === 'id') ev.id = val;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pages: each has a lifetime; leaving it stops its loops and aborts its requests and stream.

function enter() {
  if (state.page) {
    state.page.alive = false;
    state.page.abort.abort();
  }
  const abort = new AbortController();
  state.page = { alive: true, abort, signal: abort.signal };
  return state.page;
}

/** Runs `fn` now and `ms` after each run ends, while the page lives and `fn` does not answer false. */
function every(p, ms, fn) {
  const tick = async () => {
    if (!p.alive) return;
    let again = true;
    try {
      again = (await fn()) !== false;
    } catch (e) {
      expected(e);
    }
    if (again && p.alive) setTimeout(tick, ms);
  };
  tick();
}

/** `fn` with at most one run in flight and one queued: a burst of calls makes two runs. */
function coalesce(fn) {
  let running = null;
  let queued = null;
  const run = () => {
    if (!running) {
      running = Promise.resolve().then(fn).finally(() => { running = null; });
      return running;
    }
    if (!queued) {
      queued = running.catch(() => {}).then(() => { queued = null; return run(); });
    }
    return queued;
  };
  return run;
}

/**
 * Lets API errors (already shown in #error) and aborts (a page left) pass; anything else is a bug
 * and is thrown again, outside the promise, so it reaches the console as an uncaught error.
 */
function expected(e) {
  if (e instanceof ApiError || (e && e.name === 'AbortError')) return;
  setTimeout(() => { throw e; }, 0);
}

const quiet = (promise) => promise.catch(expected);
const can = (role) => Boolean(state.me) && ROLES[state.me.role] >= ROLES[role];

// ---------------------------------------------------------------------------------------------
// Login and the router

const PAGES = {
  sagas: { role: 'operator', title: 'Sagas', render: sagasPage },
  saga: { role: 'dapp', title: 'Saga', render: sagaPage },
  chains: { role: 'dapp', title: 'Chains', render: chainsPage },
  inventory: { role: 'dapp', title: 'Inventory', render: inventoryPage },
  outcomes: { role: 'operator', title: 'Outcomes', render: outcomesPage },
  webhooks: { role: 'dapp', title: 'Webhooks', render: webhooksPage },
  actions: { role: 'operator', title: 'Actions', render: actionsPage },
  changes: { role: 'operator', title: 'Changes', render: changesPage },
  version: { role: 'operator', title: 'Version', render: versionPage },
};

function home() {
  return can('operator') ? '#/sagas' : '#/chains';
}

function chrome() {
  const nav = $('#nav');
  const who = $('#who');
  nav.hidden = !state.me;
  who.hidden = !state.me;
  if (!state.me) return;
  $('#whoami').replaceChildren(h('span', { class: 'mono' }, state.me.name), ' ', badge(state.me.role));
  for (const a of nav.querySelectorAll('a[data-role]')) a.hidden = !can(a.getAttribute('data-role'));
}

function loginPage() {
  enter();
  const key = h('input', { id: 'key', type: 'password', autocomplete: 'current-password', required: true, placeholder: 'API key' });
  const button = h('button', { id: 'login', type: 'submit', class: 'primary' }, 'Sign in');
  // A username field, hidden, so password managers know what the key is for.
  const user = h('input', { type: 'text', autocomplete: 'username', value: 'baton API key', hidden: true, tabindex: -1 });
  const form = h('form', { id: 'login-form', class: 'login', novalidate: true }, h('h1', null, 'baton operator console'),
    user, h('label', { for: 'key' }, 'API key'), key, button,
    h('p', { class: 'muted' }, 'The key is kept in this tab only (session storage) and sent as a bearer token.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const typed = key.value.trim();
    if (!typed) return;
    button.disabled = true;
    try {
      const me = await api('GET', '/v1/me', null, { key: typed });
      sessionStorage.setItem(KEY, typed);
      state.me = me;
      chrome();
      if (!PAGES[routeOf().name]) location.replace(home());
      else route();
    } catch (e) {
      expected(e);
      button.disabled = false;
    }
  });
  $('#main').replaceChildren(form);
  key.focus();
}

function logout() {
  sessionStorage.removeItem(KEY);
  state.me = null;
  clearError();
  chrome();
  loginPage();
}

/** A 401: the key is gone or unknown; back to the login form, the error still shown. */
function expire() {
  sessionStorage.removeItem(KEY);
  state.me = null;
  chrome();
  loginPage();
}

function routeOf() {
  const m = location.hash.match(/^#\/([a-z]+)(?:\/(.*))?$/);
  if (!m) return { name: '' };
  try {
    return { name: m[1], arg: decodeURIComponent(m[2] || '') };
  } catch (_) {
    return { name: m[1], arg: m[2] };
  }
}

function route() {
  if (!state.me) return loginPage();
  const { name, arg } = routeOf();
  const def = PAGES[name];
  if (!def) return location.replace(home());
  const p = enter();
  const tab = { saga: 'sagas', version: 'changes' }[name] || name;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${tab}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${def.title} · baton`;
  clearError();
  const main = $('#main');
  main.replaceChildren();
  if (!can(def.role)) {
    main.append(panel(def.title, h('p', null, `This page needs an ${def.role} key; this one is ${state.me.role}.`)));
    return undefined;
  }
  return def.render(p, main, arg);
}

async function boot() {
  window.addEventListener('hashchange', route);
  $('#logout').addEventListener('click', logout);
  if (sessionStorage.getItem(KEY)) {
    try {
      state.me = await api('GET', '/v1/me');
    } catch (e) {
      expected(e); // the login form shows why
    }
  }
  chrome();
  route();
}

// ---------------------------------------------------------------------------------------------
// Sagas: the filtered list

const filters = { state: '', outcome: '', chain: '', route: '', age: '' };

function sagasPage(p, main) {
  const select = (id, key, options) => {
    const el = h('select', { id }, options.map(([v, label]) => h('option', { value: v, selected: filters[key] === v }, label)));
    el.addEventListener('change', () => { filters[key] = el.value; refresh(); });
    return el;
  };
  const input = (id, key, placeholder) => {
    const el = h('input', { id, type: 'text', value: filters[key], placeholder, spellcheck: 'false' });
    let timer = null;
    el.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => { filters[key] = el.value.trim(); refresh(); }, 350);
    });
    return el;
  };
  const any = [['', 'any']];
  const tbl = table('sagas', [['Saga'], ['State'], ['Outcome'], ['Route'], ['Admitted'], ['Updated'], ['Decided in', 'num']]);
  const count = h('span', { class: 'muted' });
  main.append(panel('Sagas',
    h('div', { class: 'filters' },
      h('label', null, 'State', select('f-state', 'state', any.concat(SAGA_STATES.map((v) => [v, v]))),),
      h('label', null, 'Outcome', select('f-outcome', 'outcome', any.concat(OUTCOMES.map((v) => [v, v])))),
      h('label', null, 'Chain', input('f-chain', 'chain', 'chain id')),
      h('label', null, 'Route', input('f-route', 'route', '31337>31338')),
      h('label', null, 'Age', select('f-age', 'age', [['', 'any'], ['max:900', 'last 15 min'],
        ['max:3600', 'last 1 h'], ['max:86400', 'last 24 h'], ['max:604800', 'last 7 d'], ['min:600', 'older than 10 min']])),
      count),
    tbl));

  const query = () => {
    const q = new URLSearchParams();
    for (const k of ['state', 'outcome', 'chain', 'route']) if (filters[k]) q.set(k, filters[k]);
    if (filters.age) {
      const [side, secs] = filters.age.split(':');
      q.set(side === 'min' ? 'min_age_secs' : 'max_age_secs', secs);
    }
    q.set('limit', '200');
    return q.toString();
  };
  const load = async () => {
    const q = query();
    const sagas = await api('GET', `/v1/operator/sagas?${q}`, null, { signal: p.signal });
    if (!p.alive || q !== query()) return;
    setRows(tbl, sagas.map(sagaRow), 'no saga matches these filters');
    tbl.setAttribute('data-query', q);
    count.textContent = `${sagas.length} shown · refreshed ${stamp(Date.now()).slice(11)}`;
  };
  const refresh = coalesce(load);
  every(p, 2000, refresh);
}

function sagaRow(v) {
  const link = h('a', { href: `#/saga/${encodeURIComponent(v.id)}`, class: 'mono', title: v.id }, short(v.id, 8));
  const o = outcomeWord(v.outcome);
  const took = v.decided_ms ? (v.decided_ms - v.created_ms) / 1000 : null;
  return h('tr', { 'data-saga': v.id },
    td(link), td(badge(v.state)),
    td(o ? badge(o, { title: v.outcome.reason || null }) : h('span', { class: 'muted' }, '—')),
    td(mono(dash(v.route))), td(when(v.created_ms)), td(when(v.updated_ms)), td(seconds(took), 'num'));
}

// ---------------------------------------------------------------------------------------------
// A saga: summary, DAG, steps, events, operator controls

function sagaPage(p, main, id) {
  const statusEl = h('span', { id: 'saga-status', class: 'badge' });
  const outcomeEl = h('span', { id: 'saga-outcome', class: 'badge' });
  const failure = h('span', { id: 'saga-failure', class: 'reason' });
  const facts = h('dl', { class: 'facts' });
  const notes = h('div', { class: 'notes' });
  const alerts = h('ul', { id: 'alerts', class: 'alerts' });
  const dagEl = s('svg', { id: 'dag', class: 'dag', 'data-saga': id, role: 'img', 'aria-label': 'The saga\'s steps' });
  const dag = dagView(dagEl);
  const steps = table('steps', [['Step', 'num'], ['Action'], ['Chain', 'num'], ['State'], ['Tx'], ['Block', 'num'],
    ['Conf', 'num'], ['Tries', 'num'], ['Reason code'], ['Reason'], ['Compensation']]);
  const events = h('ol', { id: 'events', class: 'events' });
  const seen = new Set();

  main.append(
    h('div', { class: 'crumbs' }, h('a', { href: '#/sagas' }, 'Sagas'), ' / ', h('span', { class: 'mono' }, id)),
    panel(null, h('div', { class: 'saga-head' },
      h('div', null, h('span', { class: 'label' }, 'Status'), statusEl),
      h('div', null, h('span', { class: 'label' }, 'Outcome'), outcomeEl, failure),
      h('div', { class: 'alerts-box' }, h('span', { class: 'label' }, 'Alerts'), alerts),
      facts), notes),
    panel('Plan', h('div', { class: 'dag-wrap' }, dagEl), dagLegend()),
    panel('Steps and transactions', h('div', { class: 'scroll' }, steps)),
    h('div', { class: 'columns' },
      h('div', { class: 'wide' }, panel('Events', events)),
      h('div', { class: 'side' }, can('operator') ? controls(p, id) : null)));

  let view = null;
  const draw = (v) => {
    view = v;
    statusEl.textContent = v.status;
    statusEl.className = badge(v.status).className;
    const o = outcomeWord(v.outcome);
    outcomeEl.textContent = o;
    outcomeEl.className = o ? badge(o).className : 'badge empty';
    failure.textContent = v.outcome && v.outcome.reason ? v.outcome.reason : '';
    facts.replaceChildren(
      h('dt', null, 'Admitted'), h('dd', null, when(v.created_ms)),
      h('dt', null, 'Updated'), h('dd', null, when(v.updated_ms)),
      h('dt', null, 'Events'), h('dd', null, String(v.events)));
    notes.replaceChildren(...[
      v.compensating ? h('p', { id: 'saga-compensating', class: 'note warn' }, h('strong', null, 'Compensating: '), v.compensating) : null,
      v.held_until_ms ? h('p', { id: 'saga-held', class: 'note warn' }, h('strong', null, 'Held for an operator until '),
        when(v.held_until_ms), ' — try a change on forks below and resume it, or it compensates then.') : null,
    ].filter(Boolean));
    alerts.replaceChildren(...(v.alerts.length ? v.alerts.map((a) => h('li', null, a))
      : [h('li', { class: 'muted none' }, 'no alerts')]));
    dag(v.steps);
    setRows(steps, v.steps.map(stepRow), 'no steps');
  };
  const load = coalesce(async () => {
    const v = await api('GET', `/v1/intents/${encodeURIComponent(id)}`, null, { signal: p.signal });
    if (p.alive) draw(v);
  });
  const done = () => Boolean(view) && view.status === 'completed';
  const lastSeq = () => (events.lastElementChild ? Number(events.lastElementChild.getAttribute('data-seq')) : 0);

  // The stream has its own end: once the saga completed and its last event was shown.
  const stream = new AbortController();
  p.signal.addEventListener('abort', () => stream.abort());
  every(p, 1500, async () => {
    if (done()) return false;
    try {
      await load();
    } catch (e) {
      if (e.status === 404 || e.status === 403) return false;
      throw e;
    }
    if (done() && lastSeq() >= view.events) stream.abort();
    return !done();
  });

  const onEvent = (e) => {
    const seq = Number(e.seq);
    if (seen.has(seq)) return;
    seen.add(seq);
    let data = null;
    try { data = JSON.parse(e.data); } catch (_) { data = null; }
    const atBottom = events.scrollTop + events.clientHeight >= events.scrollHeight - 4;
    events.append(eventItem(seq, e.kind, data));
    if (atBottom) events.scrollTop = events.scrollHeight;
    quiet(load());
    if (e.kind === 'completed') stream.abort();
  };
  // The stream ends once the outcome is decided; after that it is opened again (after the last
  // event) for what follows the outcome, until the saga completes or the page is left.
  follow(p, id, stream.signal, onEvent, () => !done() || lastSeq() < view.events);
}

function eventItem(seq, kind, data) {
  const ev = (data && data.event) || {};
  const bits = [];
  if (ev.step !== undefined) bits.push(`step ${ev.step}${ev.comp ? ' (undo)' : ''}`);
  if (ev.attempt !== undefined) bits.push(`attempt ${ev.attempt}`);
  if (ev.tx && typeof ev.tx === 'object' && ev.tx.hash) bits.push(`tx ${short(ev.tx.hash)}`);
  else if (typeof ev.tx === 'string') bits.push(`tx ${short(ev.tx)}`);
  if (ev.block && ev.block.number !== undefined) bits.push(`block ${ev.block.number}`);
  if (ev.outcome) bits.push(outcomeWord(ev.outcome) + (ev.outcome.reason ? `: ${ev.outcome.reason}` : ''));
  if (ev.failure) bits.push(ev.failure);
  if (ev.reason) bits.push(ev.reason);
  if (kind === 'waiting' && !ev.reason) bits.push('no longer waits');
  if (ev.by) bits.push(`by ${ev.by}`);
  if (ev.until_ms) bits.push(`until ${stamp(ev.until_ms)}`);
  const detail = bits.join(' · ');
  const at = data && data.at_ms ? new Date(data.at_ms) : null;
  return h('li', { 'data-seq': seq, 'data-kind': kind, title: at ? `${stamp(data.at_ms)} (${age(data.at_ms)})` : null },
    h('span', { class: 'seq mono' }, `#${seq}`),
    h('span', { class: `kind k-${kind.replace(/[^a-z_]/g, '')}` }, kind),
    h('span', { class: 'time mono' }, at ? `${stamp(data.at_ms).slice(11)}.${String(at.getMilliseconds()).padStart(3, '0')}` : ''),
    detail ? h('span', { class: 'detail', title: detail }, detail) : null);
}

function progressCells(pr) {
  return [
    td(badge(pr.state)),
    td(pr.tx ? mono(short(pr.tx), pr.tx) : '—'),
    td(dash(pr.block), 'num mono'),
    td(dash(pr.confirmations), 'num'),
    td(String(pr.attempts), 'num'),
    td(pr.reason_code ? h('code', null, pr.reason_code) : '—'),
    td(dash(pr.reason), 'reason', pr.reason || null),
  ];
}

function stepRow(st) {
  const c = st.compensation;
  const comp = c ? h('div', { class: 'comp' },
    h('span', { class: 'muted' }, st.undo || 'undo'), ' ', badge(c.state),
    c.tx ? [' ', mono(short(c.tx, 4), c.tx)] : null,
    c.block !== null && c.block !== undefined ? ` · block ${c.block}` : null,
    c.confirmations !== null && c.confirmations !== undefined ? ` · ${c.confirmations} conf` : null,
    c.attempts > 1 ? ` · ${c.attempts} tries` : null,
    c.reason_code ? [' ', h('code', null, c.reason_code)] : null,
    c.reason ? h('div', { class: 'reason', title: c.reason }, c.reason) : null)
    : h('span', { class: 'muted' }, st.undo ? `${st.undo} (not started)` : '—');
  const [state, ...rest] = progressCells(st);
  return h('tr', { 'data-step': st.id, class: st.pivot ? 'pivot' : null },
    td(String(st.id), 'num mono'),
    td([st.action, st.pivot ? [' ', h('span', { class: 'tag pivot' }, 'pivot')] : null]),
    td(String(st.chain), 'num mono'), state, rest, td(comp));
}

function dagLegend() {
  return h('div', { class: 'legend' },
    ['pending', 'sent', 'final', 'failed'].map((w) => h('span', null, h('i', { class: `sw s-${w}` }), w)),
    h('span', null, h('i', { class: 'sw band' }), 'lower band: its compensation'),
    h('span', null, h('i', { class: 'sw diamond' }), 'pivot: past it the saga goes forward only'));
}

const NODE_W = 176;
const NODE_H = 74;
const GAP_X = 64;
const GAP_Y = 26;
const PAD = 28;

/** Layers by longest path from the roots; within a layer, ordered by the mean height of deps. */
function layout(steps) {
  const byId = new Map(steps.map((st) => [st.id, st]));
  const layer = new Map();
  const depth = (st, path) => {
    if (layer.has(st.id)) return layer.get(st.id);
    if (path.has(st.id)) return 0;
    path.add(st.id);
    const deps = (st.depends_on || []).map((d) => byId.get(d)).filter(Boolean);
    const l = deps.length ? 1 + Math.max(...deps.map((d) => depth(d, path))) : 0;
    path.delete(st.id);
    layer.set(st.id, l);
    return l;
  };
  steps.forEach((st) => depth(st, new Set()));
  const layers = [];
  steps.forEach((st) => {
    const l = layer.get(st.id);
    if (!layers[l]) layers[l] = [];
    layers[l].push(st);
  });
  const rows = Math.max(1, ...layers.map((l) => (l ? l.length : 0)));
  const y = new Map();
  const order = new Map(steps.map((st, i) => [st.id, i]));
  layers.forEach((members, l) => {
    if (!members) return;
    if (l > 0) {
      const bary = (st) => {
        const ys = (st.depends_on || []).filter((d) => y.has(d)).map((d) => y.get(d));
        return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : 0;
      };
      members.sort((a, b) => bary(a) - bary(b) || order.get(a.id) - order.get(b.id));
    }
    const top = PAD + ((rows - members.length) * (NODE_H + GAP_Y)) / 2;
    members.forEach((st, i) => y.set(st.id, top + i * (NODE_H + GAP_Y)));
  });
  const x = (st) => PAD + layer.get(st.id) * (NODE_W + GAP_X);
  return {
    at: new Map(steps.map((st) => [st.id, { x: x(st), y: y.get(st.id) }])),
    width: 2 * PAD + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X,
    height: 2 * PAD + rows * NODE_H + (rows - 1) * GAP_Y,
  };
}

/** The DAG in `svg`: answers an update function that redraws only when the plan's shape changes. */
function dagView(svg) {
  let shape = null;
  let nodes = new Map();
  let edges = [];
  const rebuild = (steps) => {
    const { at, width, height } = layout(steps);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    const arrow = (id) => s('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
      s('path', { d: 'M0,0 L10,5 L0,10 z' }));
    const defs = s('defs', null, arrow('arrow'), arrow('arrow-done'));
    const edgeLayer = s('g', { class: 'edges' });
    const nodeLayer = s('g', { class: 'nodes' });
    edges = [];
    for (const st of steps) {
      for (const dep of st.depends_on || []) {
        const a = at.get(dep);
        const b = at.get(st.id);
        if (!a) continue;
        const x1 = a.x + NODE_W;
        const y1 = a.y + NODE_H / 2;
        const x2 = b.x - 2;
        const y2 = b.y + NODE_H / 2;
        const dx = Math.max(24, (x2 - x1) / 2);
        const path = s('path', { class: 'edge', 'data-from': dep, 'data-to': st.id, 'marker-end': 'url(#arrow)',
          d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}` });
        edges.push({ from: dep, path });
        edgeLayer.append(path);
      }
    }
    nodes = new Map();
    for (const st of steps) {
      const { x, y } = at.get(st.id);
      const n = {
        g: s('g', { class: 'node', 'data-step': st.id, 'data-action': st.action, 'data-chain': st.chain, transform: `translate(${x},${y})` }),
        title: s('title'),
        state: s('text', { x: 10, y: 52, class: 'state' }),
        band: s('rect', { class: 'comp', x: 5, y: NODE_H - 19, width: NODE_W - 10, height: 14, rx: 3 }),
        bandText: s('text', { x: NODE_W / 2, y: NODE_H - 8.5, class: 'comp-text', 'text-anchor': 'middle' }),
      };
      n.g.append(n.title,
        s('rect', { class: 'body', width: NODE_W, height: NODE_H, rx: 7 }),
        s('text', { x: 10, y: 19, class: 'action' }, st.action),
        s('text', { x: NODE_W - 9, y: 19, class: 'id', 'text-anchor': 'end' }, `#${st.id}`),
        s('text', { x: 10, y: 35, class: 'chain' }, `chain ${st.chain}`),
        n.state, n.band, n.bandText);
      if (st.pivot) {
        n.g.setAttribute('data-pivot', 'true');
        n.g.append(s('g', { class: 'pivot-mark', transform: `translate(${NODE_W / 2},0)` },
          s('path', { d: 'M0,-9 L9,0 L0,9 L-9,0 z' }),
          s('text', { x: 13, y: -4, class: 'pivot-text' }, 'PIVOT')));
      }
      nodes.set(st.id, n);
      nodeLayer.append(n.g);
    }
    svg.replaceChildren(defs, edgeLayer, nodeLayer);
  };
  const paint = (n, st) => {
    const comp = st.compensation ? st.compensation.state : 'none';
    n.g.setAttribute('data-state', st.state);
    n.g.setAttribute('data-comp', comp);
    const detail = st.state === 'final' && st.confirmations !== null && st.confirmations !== undefined
      ? `${st.confirmations} conf` : st.reason_code || (st.attempts > 1 ? `try ${st.attempts}` : '');
    n.state.textContent = detail ? `${st.state} · ${detail.replace(/_/g, ' ')}` : st.state;
    const hasBand = comp !== 'none' || Boolean(st.undo);
    n.band.classList.toggle('off', !hasBand);
    n.bandText.textContent = hasBand ? `undo: ${st.undo || 'compensation'}${comp !== 'none' ? ` · ${comp}` : ''}` : '';
    n.title.textContent = [`step ${st.id}: ${st.action} on chain ${st.chain}`, `state: ${st.state}`,
      st.tx ? `tx: ${st.tx}` : null, st.reason ? `reason: ${st.reason}` : null,
      comp !== 'none' ? `compensation: ${comp}` : null,
      st.compensation && st.compensation.reason ? `compensation reason: ${st.compensation.reason}` : null]
      .filter(Boolean).join('\n');
  };
  return (steps) => {
    const key = JSON.stringify(steps.map((st) => [st.id, st.action, st.chain, st.depends_on, Boolean(st.pivot), st.undo || null]));
    if (key !== shape) {
      shape = key;
      rebuild(steps);
    }
    const byId = new Map(steps.map((st) => [st.id, st]));
    steps.forEach((st) => paint(nodes.get(st.id), st));
    for (const e of edges) {
      const done = byId.has(e.from) && byId.get(e.from).state === 'final';
      e.path.classList.toggle('done', done);
      e.path.setAttribute('marker-end', done ? 'url(#arrow-done)' : 'url(#arrow)');
    }
  };
}

function controls(p, id) {
  const result = h('p', { id: 'action-result', class: 'muted' });
  const retry = h('button', { id: 'retry', type: 'button' }, 'Retry failed steps');
  retry.addEventListener('click', async () => {
    retry.disabled = true;
    try {
      const r = await api('POST', `/v1/operator/sagas/${encodeURIComponent(id)}/retry`, null, { signal: p.signal });
      result.textContent = `Retrying, by ${r.by}.`;
    } catch (e) {
      expected(e);
      result.textContent = 'Retry refused; see the error above.';
    } finally {
      retry.disabled = false;
    }
  });
  const withEl = h('textarea', { id: 'replay-with', rows: 3, spellcheck: 'false', placeholder: '{"slippage_bps": 150}  (empty: replay as recorded)' });
  const resume = h('input', { id: 'replay-resume', type: 'checkbox' });
  const go = h('button', { id: 'replay', type: 'button', class: 'primary' }, 'Replay on forks');
  const busy = h('span', { class: 'busy', hidden: true });
  const summary = h('div', { id: 'replay-summary', class: 'report' });
  const report = h('pre', { id: 'replay-report', class: 'report-json' });
  go.addEventListener('click', async () => {
    let change = null;
    const text = withEl.value.trim();
    if (text) {
      try {
        change = JSON.parse(text);
      } catch (e) {
        showError({ code: 'invalid_change', message: `the change is not JSON: ${e.message}` });
        return;
      }
    }
    if (resume.checked && !change) {
      showError({ code: 'invalid_change', message: 'resuming needs a change to try first' });
      return;
    }
    const started = Date.now();
    go.disabled = true;
    busy.hidden = false;
    const tick = () => { busy.textContent = `replaying on forks… ${Math.round((Date.now() - started) / 1000)} s`; };
    tick();
    const timer = setInterval(tick, 1000);
    summary.replaceChildren();
    report.textContent = '';
    try {
      const r = await api('POST', `/v1/sagas/${encodeURIComponent(id)}/replay`, { with: change, resume: resume.checked }, { signal: p.signal });
      summary.replaceChildren(...reportSummary(r).filter(Boolean));
      report.textContent = JSON.stringify(r, null, 2);
    } catch (e) {
      expected(e);
      report.textContent = '';
    } finally {
      clearInterval(timer);
      busy.hidden = true;
      go.disabled = false;
    }
  });
  return panel('Operator actions',
    h('div', { class: 'row' }, retry, result),
    h('h3', null, 'Replay on forks'),
    h('label', { for: 'replay-with' }, 'Change to try (ConfigChange: max_hops, slippage_bps, fee_ceiling_pct, split)'),
    withEl,
    h('label', { class: 'check' }, resume, ' resume the held saga with it if the trial fulfils'),
    h('div', { class: 'row' }, go, busy),
    summary, report);
}

function reportSummary(r) {
  const line = (label, ...v) => h('div', null, h('span', { class: 'label' }, label), v);
  const res = (t) => (t ? `${t.status}${t.block !== undefined ? ` in ${t.block}` : ''}${t.reason ? `: ${t.reason}` : ''}` : '—');
  const d = r.first_divergence;
  const f = r.failing_step;
  const t = r.trial;
  return [
    r.summary ? h('p', { class: 'summary' }, r.summary) : null,
    line('Reproduced', badge(r.reproduced ? 'yes' : 'no')),
    d ? line('First divergence', `step ${d.step} on chain ${d.chain}: expected ${res(d.expected)}, got ${res(d.actual)}`) : null,
    f ? line('Failing step', `step ${f.step} ${f.action} on chain ${f.chain}`, f.revert_reason ? [': ', h('code', null, f.revert_reason)] : null) : null,
    t ? line('Trial', badge(t.fulfilled ? 'fulfilled' : 'not fulfilled'), ` ${t.summary || ''}`) : null,
    r.resume ? line('Resume', badge(r.resume.resumed ? 'resumed' : 'not resumed'), ` ${r.resume.summary || ''}`) : null,
    r.took_ms !== undefined ? line('Took', seconds(r.took_ms / 1000)) : null,
  ];
}

// ---------------------------------------------------------------------------------------------
// Chains: conditions, health, pauses, the emergency brake

function chainsPage(p, main) {
  const op = can('operator');
  const reason = h('input', { id: 'pause-reason', type: 'text', value: 'paused from the console', maxlength: 500, spellcheck: 'false' });
  const brakeState = h('span', { id: 'brake-state', class: 'badge' }, '…');
  const brake = h('button', { id: 'brake', type: 'button', class: 'danger' }, 'Pull the emergency brake');
  const confirm = h('button', { id: 'brake-confirm', type: 'button', class: 'danger solid', hidden: true }, 'Confirm: stop intake and every chain');
  const cancel = h('button', { id: 'brake-cancel', type: 'button', hidden: true }, 'Cancel');
  const release = h('button', { id: 'release', type: 'button', hidden: !can('admin') }, 'Release the brake');
  const pauses = h('ul', { id: 'pauses', class: 'pauses' });
  const tbl = table('chains', [['Chain', 'num'], ['Reachable'], ['Healthy'], ['Paused'], ['Head', 'num'], ['Head age'],
    ['Base fee (wei)', 'num'], ['Block time', 'num'], ['RPC calls', 'num'], ['RPC errors', 'num'], ['Error rate', 'num'], op ? ['Pause'] : null].filter(Boolean));
  let inForce = [];

  const why = () => {
    const r = reason.value.trim();
    if (r.length < 1 || r.length > 500) {
      showError({ code: 'invalid_reason', message: 'a pause needs a reason of 1 to 500 characters' });
      return null;
    }
    return r;
  };
  const act = async (path, body) => {
    const answer = await api('POST', path, body, { signal: p.signal });
    if (Array.isArray(answer)) showPauses(answer);
    quiet(refresh());
  };
  let disarm = null;
  const arm = (on) => {
    brake.hidden = on;
    confirm.hidden = !on;
    cancel.hidden = !on;
    clearTimeout(disarm);
    if (on) disarm = setTimeout(() => arm(false), 10000);
  };
  brake.addEventListener('click', () => { if (why()) arm(true); });
  cancel.addEventListener('click', () => arm(false));
  confirm.addEventListener('click', async () => {
    const r = why();
    arm(false);
    if (r) await quiet(act('/v1/operator/pause', { reason: r }));
  });
  release.addEventListener('click', () => quiet(act('/v1/operator/resume')));

  const showPauses = (list) => {
    inForce = list;
    const engaged = list.some((x) => x.scope === 'all');
    brakeState.textContent = engaged ? 'engaged' : 'released';
    brakeState.className = `badge b-${engaged ? 'engaged' : 'released'}`;
    release.disabled = !engaged;
    brake.disabled = engaged;
    pauses.replaceChildren(...(list.length ? list.map((x) => h('li', null,
      x.scope === 'all' ? h('strong', { class: 'danger-text' }, 'all chains and intake (emergency brake)') : h('strong', null, `chain ${x.scope.chain}`),
      ' — ', h('q', null, x.reason), ' by ', h('span', { class: 'mono' }, x.by), ', ', when(x.at_ms)))
      : [h('li', { class: 'muted none' }, 'no pause in force')]));
  };
  const chainPaused = (chain) => inForce.some((x) => x.scope !== 'all' && x.scope.chain === chain);
  const row = (c) => {
    const cells = [
      td(String(c.chain), 'num mono'),
      td(badge(c.reachable ? 'yes' : 'no')),
      td(badge(c.healthy ? 'healthy' : 'unhealthy')),
      td(c.paused ? badge('paused') : h('span', { class: 'muted' }, 'no')),
      td(dash(c.head), 'num mono'),
      td(c.timestamp ? age(c.timestamp * 1000) : '—'),
      td(dash(c.base_fee), 'num mono'),
      td(c.block_time_ms === null || c.block_time_ms === undefined ? '—' : `${(c.block_time_ms / 1000).toFixed(2)} s`, 'num'),
      td(dash(c.rpc_calls), 'num'),
      td(dash(c.rpc_errors), 'num'),
      td(c.rpc_error_rate === null || c.rpc_error_rate === undefined ? '—' : `${(c.rpc_error_rate * 100).toFixed(1)} %`,
        c.rpc_error_rate > 0.05 ? 'num bad' : 'num'),
    ];
    if (op) {
      const mine = chainPaused(c.chain);
      cells.push(td([
        h('button', { type: 'button', class: 'pause small', 'data-chain': c.chain, disabled: mine,
          onclick: () => { const r = why(); if (r) quiet(act(`/v1/operator/chains/${c.chain}/pause`, { reason: r })); } }, 'Pause'),
        ' ',
        h('button', { type: 'button', class: 'resume small', 'data-chain': c.chain, disabled: !mine,
          onclick: () => quiet(act(`/v1/operator/chains/${c.chain}/resume`)) }, 'Resume'),
      ]));
    }
    return h('tr', { 'data-chain': c.chain, class: c.healthy ? null : 'unhealthy' }, cells);
  };

  if (op) {
    main.append(panel('Emergency brake',
      h('div', { class: 'brake' },
        h('div', null, h('span', { class: 'label' }, 'Brake'), brakeState),
        h('label', { class: 'grow' }, 'Reason (recorded with every pause)', reason),
        h('div', { class: 'row' }, brake, confirm, cancel, release)),
      h('p', { class: 'muted' }, 'The brake stops intake and every new transaction on every chain; transactions in flight are still watched. Only admin keys release it.'),
      h('h3', null, 'Pauses in force'), pauses));
  }
  main.append(panel('Chains', h('div', { class: 'scroll' }, tbl)));

  const refresh = coalesce(async () => {
    const [chains, list] = await Promise.all([
      api('GET', '/v1/chains', null, { signal: p.signal }),
      op ? api('GET', '/v1/operator/pauses', null, { signal: p.signal }) : Promise.resolve(null),
    ]);
    if (!p.alive) return;
    if (list) showPauses(list);
    setRows(tbl, chains.map(row), 'no chains');
  });
  every(p, 2000, refresh);
}

// ---------------------------------------------------------------------------------------------
// Inventory

function inventoryPage(p, main) {
  const tbl = table('inventory', [['Chain', 'num'], ['Token'], ['Address'], ['Held', 'num'], ['Reserved', 'num'], ['Available', 'num'], ['Reserved share']]);
  main.append(panel('Inventory', h('p', { class: 'muted' }, 'Base units of each token, as the chain reports the solver\'s balance; reserved is promised to running intents.'),
    h('div', { class: 'scroll' }, tbl)));
  const share = (reserved, balance) => {
    try {
      const b = BigInt(balance);
      const r = BigInt(reserved);
      return b > 0n ? Number((r * 1000n) / b) / 10 : (r > 0n ? 100 : 0);
    } catch (_) {
      return 0;
    }
  };
  every(p, 5000, async () => {
    const items = await api('GET', '/v1/inventory', null, { signal: p.signal });
    if (!p.alive) return;
    setRows(tbl, items.map((it) => {
      const pct = Math.min(100, share(it.reserved, it.balance));
      const fill = h('span', { class: pct > 80 ? 'fill hot' : 'fill' });
      fill.style.width = `${pct}%`;
      return h('tr', { 'data-chain': it.chain, 'data-token': it.token },
        td(String(it.chain), 'num mono'), td(h('strong', null, it.token)), td(mono(it.address)),
        td(it.balance, 'num mono'), td(it.reserved, 'num mono'), td(it.available, 'num mono'),
        td(h('span', { class: 'meter', title: `${pct}% reserved` }, fill)));
    }), 'no inventory');
  });
}

// ---------------------------------------------------------------------------------------------
// Outcomes over time

const WINDOWS = [[3600, 300, 'last 1 h'], [86400, 3600, 'last 24 h'], [604800, 21600, 'last 7 d']];
let outcomeWindow = 86400;

function outcomesPage(p, main) {
  const select = h('select', { id: 'o-window' }, WINDOWS.map(([w, , label]) => h('option', { value: w, selected: w === outcomeWindow }, label)));
  const chart = s('svg', { id: 'chart-outcomes', class: 'chart', role: 'img', 'aria-label': 'Outcomes per bucket' });
  const latency = s('svg', { id: 'chart-latency', class: 'chart', role: 'img', 'aria-label': 'Time to outcome per route' });
  const routes = table('routes', [['Route'], ['Fulfilled', 'num'], ['Refunded', 'num'], ['Failed', 'num'], ['Total', 'num'],
    ['Fulfilled share', 'num'], ['p50 to outcome', 'num'], ['p99 to outcome', 'num']]);
  main.append(panel('Outcomes', h('div', { class: 'filters' }, h('label', null, 'Window', select)),
    h('h3', null, 'Outcomes decided per bucket'), h('div', { class: 'chart-wrap' }, chart),
    h('h3', null, 'Time to outcome per route (admitted → decided)'), h('div', { class: 'chart-wrap' }, latency),
    h('h3', null, 'Routes'), routes));
  const load = coalesce(async () => {
    const w = outcomeWindow;
    const bucket = WINDOWS.find((x) => x[0] === w)[1];
    const data = await api('GET', `/v1/operator/outcomes?window_secs=${w}&bucket_secs=${bucket}`, null, { signal: p.signal });
    if (!p.alive || w !== outcomeWindow) return;
    drawOutcomes(chart, data, w);
    drawLatency(latency, data.routes);
    setRows(routes, data.routes.map((r) => {
      const total = r.fulfilled + r.refunded + r.failed;
      return h('tr', { 'data-route': r.route }, td(mono(r.route)), td(String(r.fulfilled), 'num'), td(String(r.refunded), 'num'),
        td(String(r.failed), 'num'), td(String(total), 'num'),
        td(total ? `${((100 * r.fulfilled) / total).toFixed(1)} %` : '—', 'num'), td(seconds(r.p50_secs), 'num'), td(seconds(r.p99_secs), 'num'));
    }), 'no outcome decided in this window');
  });
  select.addEventListener('change', () => { outcomeWindow = Number(select.value); quiet(load()); });
  every(p, 10000, load);
}

/** An axis's ticks from 0 to a round bound over `max`, about `count` of them, `least` apart at least. */
function ticks(max, count, least) {
  const raw = Math.max(max / count, least || 0, 1e-9);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw);
  const top = Math.ceil(Math.max(max, 1) / step) * step;
  const out = [];
  for (let v = 0; v <= top + step / 2; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function legend(x, y, items) {
  return s('g', { class: 'legend', transform: `translate(${x},${y})` }, items.map(([cls, label], i) =>
    s('g', { transform: `translate(${i * 100},0)` }, s('rect', { class: cls, width: 11, height: 11, rx: 2 }), s('text', { x: 16, y: 10 }, label))));
}

/** The width a chart gets: its container's. */
const chartWidth = (svg) => Math.max(640, Math.floor(svg.parentElement.clientWidth || 1040));

/** A bucket's length in words. */
const lengthOf = (secs) => (secs % 3600 === 0 ? `${secs / 3600} h` : secs % 60 === 0 ? `${secs / 60} min` : `${secs} s`);

function drawOutcomes(svg, data, windowSecs) {
  const W = chartWidth(svg);
  const H = 270;
  const m = { l: 48, r: 16, t: 30, b: 44 };
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  const bucketMs = data.bucket_secs * 1000;
  const from = data.since_ms;
  const to = Math.max(from + windowSecs * 1000, ...data.buckets.map((b) => b.start_ms + bucketMs));
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const x = (t) => m.l + ((t - from) / (to - from)) * pw;
  const totals = data.buckets.map((b) => b.fulfilled + b.refunded + b.failed);
  const ys = ticks(Math.max(1, ...totals), 4, 1);
  const top = ys[ys.length - 1];
  const y = (v) => m.t + ph - (v / top) * ph;
  const kids = [];
  for (const v of ys) {
    kids.push(s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
      s('text', { class: 'tick', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  const hourly = windowSecs <= 86400;
  const step = [300, 900, 1800, 3600, 10800, 21600, 43200, 86400].map((v) => v * 1000).find((v) => (to - from) / v <= 12);
  const offset = new Date().getTimezoneOffset() * 60000;
  for (let t = Math.ceil((from - offset) / step) * step + offset; x(t) <= W - m.r - 28; t += step) {
    const d = new Date(t);
    const label = hourly ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}h`;
    kids.push(s('line', { class: 'axis', x1: x(t), x2: x(t), y1: m.t + ph, y2: m.t + ph + 4 }),
      s('text', { class: 'tick', x: x(t), y: m.t + ph + 17, 'text-anchor': 'middle' }, label));
  }
  const bw = Math.max(2, (bucketMs / (to - from)) * pw * 0.8);
  for (const b of data.buckets) {
    let acc = 0;
    for (const o of OUTCOMES) {
      const n = b[o];
      if (!n) continue;
      kids.push(s('rect', { class: `bar o-${o}`, 'data-outcome': o, 'data-count': n, 'data-start': b.start_ms,
        x: x(b.start_ms) + ((bucketMs / (to - from)) * pw - bw) / 2, y: y(acc + n), width: bw, height: y(acc) - y(acc + n) },
      s('title', null, `${stamp(b.start_ms)} + ${lengthOf(data.bucket_secs)}: ${n} ${o}`)));
      acc += n;
    }
  }
  kids.push(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ph, y2: m.t + ph }),
    s('text', { class: 'axis-label', x: m.l + pw / 2, y: H - 6, 'text-anchor': 'middle' }, `decided at (local time; one bar per ${lengthOf(data.bucket_secs)})`),
    s('text', { class: 'axis-label', x: 12, y: m.t + ph / 2, transform: `rotate(-90 12 ${m.t + ph / 2})`, 'text-anchor': 'middle' }, 'intents'),
    legend(W - m.r - 300, 6, OUTCOMES.map((o) => [`o-${o}`, o])));
  if (!data.buckets.length) kids.push(s('text', { class: 'empty-chart', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' }, 'no outcome decided in this window'));
  svg.replaceChildren(...kids);
}

function drawLatency(svg, routes) {
  const W = chartWidth(svg);
  const row = 40;
  const m = { l: 150, r: 70, t: 30, b: 34 };
  const H = m.t + m.b + Math.max(1, routes.length) * row;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  const pw = W - m.l - m.r;
  const xs = ticks(Math.max(1, ...routes.map((r) => Math.max(r.p50_secs || 0, r.p99_secs || 0))), 6);
  const top = xs[xs.length - 1];
  const x = (v) => m.l + (v / top) * pw;
  const kids = [];
  for (const v of xs) {
    kids.push(s('line', { class: 'grid', x1: x(v), x2: x(v), y1: m.t, y2: H - m.b }),
      s('text', { class: 'tick', x: x(v), y: H - m.b + 15, 'text-anchor': 'middle' }, seconds(v)));
  }
  routes.forEach((r, i) => {
    const y0 = m.t + i * row;
    kids.push(s('text', { class: 'route-label', x: m.l - 10, y: y0 + row / 2 + 4, 'text-anchor': 'end' }, r.route));
    [['p50', r.p50_secs, 5], ['p99', r.p99_secs, 20]].forEach(([q, v, dy]) => {
      if (v === null || v === undefined) {
        kids.push(s('text', { class: 'value', x: m.l + 4, y: y0 + dy + 11 }, `${q} —`));
        return;
      }
      kids.push(s('rect', { class: `bar q-${q}`, 'data-route': r.route, 'data-quantile': q, 'data-secs': v,
        x: m.l, y: y0 + dy, width: Math.max(1, x(v) - m.l), height: 14 }, s('title', null, `${r.route} ${q}: ${seconds(v)}`)),
      s('text', { class: 'value', x: x(v) + 5, y: y0 + dy + 11 }, `${q} ${seconds(v)}`));
    });
  });
  kids.push(s('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }),
    s('text', { class: 'axis-label', x: m.l + pw / 2, y: H - 4, 'text-anchor': 'middle' }, 'seconds from admission to outcome'),
    legend(W - m.r - 200, 6, [['q-p50', 'p50'], ['q-p99', 'p99']]));
  if (!routes.length) kids.push(s('text', { class: 'empty-chart', x: m.l + pw / 2, y: m.t + row / 2 + 4, 'text-anchor': 'middle' }, 'no route decided an outcome in this window'));
  svg.replaceChildren(...kids);
}

// ---------------------------------------------------------------------------------------------
// Webhooks

function webhooksPage(p, main) {
  const op = can('operator');
  const url = h('input', { id: 'wh-url', type: 'text', placeholder: 'http://hooks.example.com/baton', spellcheck: 'false', maxlength: 2048 });
  const description = h('input', { id: 'wh-description', type: 'text', maxlength: 200, placeholder: 'what you call it' });
  const topics = TOPICS.map((t) => h('label', { class: 'check' }, h('input', { type: 'checkbox', class: 'wh-topic', value: t }), ` ${t}`));
  const create = h('button', { id: 'wh-create', type: 'button', class: 'primary' }, 'Register endpoint');
  const secret = h('div', { class: 'secret-slot' });
  const mine = table('webhooks', [['Id'], ['URL'], ['Topics'], ['Description'], ['State'], ['Pending', 'num'], ['Registered'], ['']]);
  const deliveries = table('deliveries', [['Message'], ['Topic'], ['Attempt', 'num'], ['At'], ['Status', 'num'], ['Error'], ['Took', 'num']]);
  const deliveriesTitle = h('h3', null, 'Deliveries');
  const all = op ? table('all-webhooks', [['Owner'], ['Id'], ['URL'], ['Topics', 'num'], ['State'], ['Failing since'], ['Pending', 'num']]) : null;
  let selected = null;
  let armed = null;

  create.addEventListener('click', async () => {
    const events = topics.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    if (!events.length) {
      showError({ code: 'invalid_request', message: 'pick at least one topic' });
      return;
    }
    create.disabled = true;
    try {
      const w = await api('POST', '/v1/webhooks', { url: url.value.trim(), events, description: description.value }, { signal: p.signal });
      const created = w.webhook || w;
      secret.replaceChildren(h('div', { id: 'wh-secret', class: 'secret', 'data-webhook': created.id },
        h('strong', null, `Signing secret of ${created.id}: `), h('code', { class: 'mono' }, w.secret),
        h('p', null, 'Shown this once: store it now where your receiver can verify signatures (Standard Webhooks). It cannot be read again.')));
      url.value = '';
      description.value = '';
      topics.forEach((l) => { l.firstChild.checked = false; });
      await quiet(refresh());
    } catch (e) {
      expected(e);
    } finally {
      create.disabled = false;
    }
  });

  const showDeliveries = async () => {
    if (!selected) return;
    const list = await api('GET', `/v1/webhooks/${encodeURIComponent(selected)}/deliveries?limit=100`, null, { signal: p.signal });
    if (!p.alive) return;
    deliveriesTitle.textContent = `Deliveries of ${selected}`;
    setRows(deliveries, list.map((d) => h('tr', { 'data-message': d.message_id },
      td(mono(short(d.message_id, 8), d.message_id)), td(d.event), td(String(d.attempt), 'num'), td(when(d.at_ms)),
      td(d.status === null || d.status === undefined ? '—' : String(d.status), d.status >= 200 && d.status < 300 ? 'num good' : 'num bad'),
      td(dash(d.error), 'reason', d.error || null), td(`${d.duration_ms} ms`, 'num'))), 'no delivery yet');
  };
  const row = (w) => {
    const actions = [
      h('button', { type: 'button', class: 'small deliveries', onclick: () => { selected = w.id; quiet(showDeliveries()); } }, 'Deliveries'),
      h('button', { type: 'button', class: 'small enable', disabled: w.state !== 'failing',
        onclick: async () => { await quiet(api('POST', `/v1/webhooks/${encodeURIComponent(w.id)}/enable`, null, { signal: p.signal })); quiet(refresh()); } }, 'Enable'),
      armed === w.id
        ? h('button', { type: 'button', class: 'small danger solid delete-confirm', onclick: async () => {
          armed = null;
          await quiet(api('DELETE', `/v1/webhooks/${encodeURIComponent(w.id)}`, null, { signal: p.signal }));
          if (selected === w.id) selected = null;
          quiet(refresh());
        } }, 'Confirm delete')
        : h('button', { type: 'button', class: 'small danger delete', onclick: () => { armed = w.id; quiet(refresh()); } }, 'Delete'),
    ];
    return h('tr', { 'data-webhook': w.id, class: selected === w.id ? 'selected' : null },
      td(mono(short(w.id, 6), w.id)), td(mono(w.url), 'url', w.url), td(w.events.join(', '), 'topics', w.events.join('\n')),
      td(dash(w.description), 'reason', w.description || null), td(badge(w.state)), td(String(w.pending), 'num'),
      td(when(w.created_ms)), td(actions, 'actions'));
  };
  const refresh = coalesce(async () => {
    const [list, every2] = await Promise.all([
      api('GET', '/v1/webhooks', null, { signal: p.signal }),
      op ? api('GET', '/v1/operator/webhooks', null, { signal: p.signal }) : Promise.resolve(null),
    ]);
    if (!p.alive) return;
    setRows(mine, list.map(row), 'no endpoint registered with this key');
    if (all) {
      setRows(all, every2.map((w) => h('tr', { 'data-webhook': w.id }, td(mono(w.owner)), td(mono(short(w.id, 6), w.id)),
        td(mono(w.url), 'url', w.url), td(String(w.events.length), 'num', w.events.join('\n')), td(badge(w.state)),
        td(w.failing_since_ms ? when(w.failing_since_ms) : '—'), td(String(w.pending), 'num'))), 'no endpoint registered');
    }
    await showDeliveries();
  });

  main.append(
    panel('Register an endpoint',
      h('div', { class: 'form' },
        h('label', null, 'URL (http://, public address unless the server allows private ones)', url),
        h('label', null, 'Description', description),
        h('fieldset', { class: 'topics' }, h('legend', null, 'Topics'), topics),
        h('div', { class: 'row' }, create)),
      secret),
    panel('Endpoints of this key', h('div', { class: 'scroll' }, mine), deliveriesTitle, h('div', { class: 'scroll' }, deliveries)),
    all ? panel('Every key\'s endpoints', h('div', { class: 'scroll' }, all)) : null);
  setRows(deliveries, [], 'pick an endpoint\'s deliveries above');
  every(p, 5000, refresh);
}

// ---------------------------------------------------------------------------------------------
// Operator actions

function actionsPage(p, main) {
  const tbl = table('actions', [['At'], ['By'], ['Action'], ['Target'], ['Detail']]);
  main.append(panel('Operator actions', h('p', { class: 'muted' }, 'The latest 200, newest first.'), tbl));
  every(p, 5000, async () => {
    const list = await api('GET', '/v1/operator/actions', null, { signal: p.signal });
    if (!p.alive) return;
    setRows(tbl, list.map((a) => h('tr', null, td(when(a.at_ms)), td(mono(a.by)), td(badge(a.action)),
      td(a.target.startsWith('0x') ? h('a', { href: `#/saga/${encodeURIComponent(a.target)}`, class: 'mono', title: a.target }, short(a.target, 8)) : mono(a.target)),
      td(dash(a.detail), 'reason', a.detail || null))), 'no operator action recorded');
  });
}

// ---------------------------------------------------------------------------------------------
// Coordinated changes: configuration versions and what each instance runs

function changesPage(p, main) {
  const versions = table('versions', [['Version', 'num'], ['Id'], ['State'], ['Proposed by'], ['Changed'], ['Activates'], ['Shadow run']]);
  const instances = table('instances', [['Instance'], ['Runs'], ['Staged'], ['Pulls every', 'num'], ['Last seen'], ['Alive'], ['Lagging']]);
  main.append(
    panel('Configuration versions', h('p', { class: 'muted' }, 'Every version with where it is in its lifecycle; a version\'s page shows its record, approvals and shadow run. Propose, approve and schedule with `baton config`.'),
      h('div', { class: 'scroll' }, versions)),
    panel('Instances', h('p', { class: 'muted' }, 'What each instance declares: the version it runs and the one it has staged. Lagging: alive and not on the active version.'),
      h('div', { class: 'scroll' }, instances)));
  every(p, 3000, async () => {
    const [list, running] = await Promise.all([
      api('GET', '/v1/operator/config/versions', null, { signal: p.signal }),
      api('GET', '/v1/operator/instances', null, { signal: p.signal }),
    ]);
    if (!p.alive) return;
    const numberOf = new Map(list.map((v) => [v.id, v.number]));
    setRows(versions, list.slice().reverse().map((v) => {
      const at = v.activate_at_block ? `block ${v.activate_at_block.block} of ${v.activate_at_block.chain}` : (v.activate_at_ms ? when(v.activate_at_ms) : '—');
      return h('tr', { 'data-version': v.number, 'data-state': v.state },
        td(h('a', { href: `#/version/${v.number}` }, String(v.number)), 'num'), td(mono(short(v.id, 10), v.id)),
        td(badge(v.state)), td(mono(v.proposed_by)), td(when(v.updated_ms)), td(at), td(h('span', { class: 'shadow-cell', 'data-version': v.number }, '…')));
    }), 'no configuration version');
    // The shadow run's verdict of the versions still in question.
    for (const v of list.filter((x) => ['proposed', 'validated'].includes(x.state))) {
      api('GET', `/v1/operator/config/versions/${v.number}`, null, { signal: p.signal }).then((d) => {
        const cell = versions.querySelector(`.shadow-cell[data-version="${v.number}"]`);
        if (cell) cell.replaceChildren(shadowWord(d.shadow));
      }).catch(() => {});
    }
    for (const cell of versions.querySelectorAll('.shadow-cell')) if (cell.textContent === '…') cell.textContent = '—';
    setRows(instances, running.map((i) => h('tr', { 'data-instance': i.instance, 'data-running': dash(i.running_version), 'data-lagging': String(i.lagging) },
      td(mono(i.instance)), td(i.running_version ? h('a', { href: `#/version/${i.running_version}` }, `version ${i.running_version}`) : mono(short(i.running, 10), i.running)),
      td(i.staged ? `version ${dash(numberOf.get(i.staged))}` : '—'), td(seconds(i.pull_every_ms / 1000), 'num'), td(when(i.seen_ms)),
      td(badge(i.alive ? 'yes' : 'no')), td(badge(i.lagging ? 'lagging' : 'current')))), 'no instance has declared itself');
  });
}

function shadowWord(shadow) {
  if (!shadow) return '—';
  if (!shadow.finished_ms) return badge('running');
  if (shadow.regressions > 0 && !shadow.overridden_by) return badge('failing', { title: `${shadow.regressions} of ${shadow.sagas} sagas ended worse` });
  if (shadow.regressions > 0) return badge('overridden', { title: shadow.override_reason || '' });
  return badge('passed', { title: `${shadow.sagas} sagas re-run` });
}

function versionPage(p, main, number) {
  const head = h('dl', { class: 'facts version-facts' });
  const history = table('version-history', [['#', 'num'], ['From'], ['To'], ['By'], ['At'], ['Detail']]);
  const approvals = table('version-approvals', [['Approver'], ['Sent by'], ['At']]);
  const shadow = table('version-shadow', [['Saga'], ['Before'], ['Under this version'], ['Delivered (as it ran → on forks)', 'num'],
    ['Open to last fill, chain s', 'num'], ['Worse'], ['What happened']]);
  const shadowHead = h('p', { class: 'muted' });
  main.append(
    h('div', { class: 'crumbs' }, h('a', { href: '#/changes' }, 'Changes'), ' / ', h('span', null, `version ${number}`)),
    panel(`Configuration version ${number}`, head),
    panel('Record', h('div', { class: 'scroll' }, history)),
    panel('Approvals', approvals),
    panel('Shadow run', shadowHead, h('div', { class: 'scroll' }, shadow)));
  every(p, 3000, async () => {
    const d = await api('GET', `/v1/operator/config/versions/${encodeURIComponent(number)}`, null, { signal: p.signal });
    if (!p.alive) return;
    const v = d.version;
    head.replaceChildren(
      h('dt', null, 'State'), h('dd', null, badge(v.state, { id: 'version-state' })),
      h('dt', null, 'Id'), h('dd', null, mono(v.id)),
      h('dt', null, 'Changes'), h('dd', null, v.parent ? mono(short(v.parent, 10), v.parent) : '—'),
      h('dt', null, 'Approval message'), h('dd', null, mono(d.approval_message)),
      h('dt', null, 'Approved by'), h('dd', null, d.approved_by.quorum > 0 ? `${d.approved_by.quorum} of ${d.approved_by.approvers.length} approvers` : 'an admin key'));
    setRows(history, d.history.map((t) => h('tr', null, td(String(t.seq), 'num'), td(t.from ? badge(t.from) : '—'), td(badge(t.to)),
      td(mono(t.by)), td(when(t.at_ms)), td(t.detail, 'reason', t.detail))), 'no record');
    setRows(approvals, d.approvals.map((a) => h('tr', null, td(mono(a.approver)), td(mono(a.by)), td(when(a.at_ms)))), 'no approval');
    const sh = d.shadow;
    if (!sh) {
      shadowHead.textContent = 'No shadow run (none was due, or shadow runs are off).';
      setRows(shadow, [], 'no saga re-run');
      return;
    }
    shadowHead.replaceChildren(shadowWord(sh), ' ', sh.finished_ms
      ? `${sh.sagas} saga(s) re-run on forks by ${sh.by_instance}, ${sh.regressions} ending worse.` : `under way on ${sh.by_instance}.`,
      sh.overridden_by ? ` Overridden by ${sh.overridden_by}: ${sh.override_reason}` : '');
    const report = sh.report || { sagas: [], skipped: [] };
    for (const note of (report.notes || []).concat(report.skipped || [])) shadowHead.append(h('br'), note);
    // Each output's amount (base units), as it ran and on the forks.
    const delivered = (r) => (r.delivered_before || []).map((b, i) => `${b ?? '—'} → ${(r.delivered_after || [])[i] ?? '—'}`).join('; ') || '—';
    const secs = (r) => `${r.secs_before ?? '—'} → ${r.secs_after ?? '—'}`;
    setRows(shadow, report.sagas.map((r) => h('tr', { 'data-regression': String(r.regression) },
      td(h('a', { href: `#/saga/${encodeURIComponent(r.saga)}`, class: 'mono', title: r.saga }, short(r.saga, 8))),
      td(badge(r.before)), td(badge(r.after || 'none')), td(delivered(r), 'num mono'), td(secs(r), 'num'),
      td(badge(r.regression ? 'yes' : 'no')), td(r.summary, 'reason', r.summary))), 'no saga re-run');
  });
}

document.addEventListener('DOMContentLoaded', boot);
