// The tenant page: what a prepaid tenant checks on a phone. Plain browser JavaScript
// modules, no build step. A phone signs in once with a login link (the device session
// cookie, which this script never sees); programs and managers may type a token, kept in
// this tab's sessionStorage and sent only as the Authorization header. Figures are shown as
// the API formats them (decimal strings), re-formatted as text; numbers are parsed only to
// size the chart and to pick days over hours.
import { $, addDays, api, ApiError, el, PERIOD_COLORS, PERIOD_ORDER, showLoginCard } from './common.js';
import { currentLang, duration, money, price4, setLang, t } from './i18n.js';
import { mount as mountTopup } from './topup.js';

const state = { token: sessionStorage.getItem('submeter.token') || '', me: null, data: {}, timer: null, billMonth: null, topup: null, catchUp: null, fastTimer: null };
/** While a payment is being credited or the power is coming back: refresh this often (ms). */
const FAST_MS = 2000;
/** ... for at most this long after a top-up was paid. */
const CATCH_UP_MS = 120_000;

// ---- sections ----------------------------------------------------------------------
// The dashboard is a list of sections; each loads its data and renders it (again on a
// language switch, from the data it has). `poll`: reloaded every 30 s (and every few seconds
// while a payment is being credited); `afterPay`: reloaded once a top-up is paid; `lang`:
// worded by the API, reloaded on a language switch.
const sections = [];
/** @param {{ id: string, load: (ctx) => Promise<unknown>, render: (ctx, data) => void, lang?: boolean, poll?: boolean, afterPay?: boolean }} s */
export function registerSection(s) {
  sections.push(s);
}

const ctx = () => ({ me: state.me, account: state.me.account, lang: currentLang(), call: (path, opts = {}) => api(path, { ...opts, token: state.token }) });
const acct = () => encodeURIComponent(state.me.account);

registerSection({ id: 'live', poll: true, load: (c) => c.call(`/accounts/${acct()}/live`), render: renderLive });
// The power supply (issue 13): on or off as the meters read back, why, since when, what to pay.
registerSection({ id: 'relay', poll: true, lang: true, load: (c) => c.call(`/accounts/${acct()}/relay?lang=${c.lang}`), render: renderRelay });
// Online top-up (issue 14): the site's presets and limits; not enabled -> whom to call.
registerSection({ id: 'topup', load: (c) => c.call('/topup/options').catch(() => ({ enabled: false })), render: renderTopup });
registerSection({
  id: 'usage',
  load: async (c) => {
    const today = state.data.live.time.slice(0, 10);
    const from = addDays(today, -1);
    const r = await c.call(`/accounts/${acct()}/usage?from=${from}&to=${addDays(today, 1)}&interval=1h`);
    return { from, today, now: state.data.live.time, points: r.points };
  },
  render: renderUsage,
});
registerSection({ id: 'bills', afterPay: true, load: loadBills, render: renderBills });
registerSection({ id: 'payments', afterPay: true, load: (c) => c.call(`/accounts/${acct()}/payments`), render: renderPayments });
registerSection({ id: 'alerts', lang: true, load: (c) => c.call(`/accounts/${acct()}/alerts?lang=${c.lang}`), render: renderAlerts });
registerSection({
  id: 'advice',
  load: async (c) => {
    const today = state.data.live.time.slice(0, 10);
    return c.call(`/accounts/${acct()}/advice?from=${addDays(today, -30)}&to=${today}`).catch(() => null);
  },
  render: renderAdvice,
});

async function loadAll(only) {
  const c = ctx();
  for (const s of sections.filter((x) => !only || only(x))) {
    // live first: the others use its local time
    if (s.id === 'live') state.data.live = await s.load(c);
  }
  await Promise.all(
    sections
      .filter((x) => x.id !== 'live' && (!only || only(x)))
      .map(async (s) => {
        state.data[s.id] = await s.load(c);
      }),
  );
  renderAll();
  scheduleFast();
}

function renderAll() {
  const c = ctx();
  for (const s of sections) if (state.data[s.id] !== undefined) s.render(c, state.data[s.id]);
}

// ---- texts -------------------------------------------------------------------------

function applyTexts() {
  document.title = state.me ? `${t('title')} · ${state.me.site_name}` : t('title');
  $('title').textContent = state.me ? state.me.site_name : t('title');
  $('lang').textContent = t('langSwitch');
  $('lang').lang = currentLang() === 'zh' ? 'en' : 'zh-CN';
  for (const e of document.querySelectorAll('[data-t]')) e.textContent = t(e.dataset.t);
  const [item, kwh, amount] = t('billCols');
  $('bill-col-item').textContent = item;
  $('bill-col-kwh').textContent = kwh;
  $('bill-col-amount').textContent = amount;
}

const periodName = (p) => t('period')[p] ?? p;

function dot(period) {
  const d = el('span', { class: 'dot' });
  d.style.background = PERIOD_COLORS[period]; // CSSOM, not a style attribute: allowed by the CSP
  return d;
}

function fill(list, items, empty) {
  list.replaceChildren(...(items.length ? items : [el('li', { class: 'hint' }, empty)]));
}

// ---- balance, price now, today -----------------------------------------------------

function renderLive(_c, live) {
  $('who').textContent = `${state.me.account_name} · ${state.me.account}`;
  $('balance').textContent = money(live.balance);
  $('balance').className = `value ${live.status}`;
  const badge = $('status-badge');
  badge.textContent = t('status')[live.status];
  badge.className = `badge ${live.status}`;
  $('hours-left').textContent = live.hours_left !== null && live.status !== 'negative' ? t('left')(duration(live.hours_left)) : '';
  const todo = $('what-to-do');
  todo.hidden = live.status === 'ok';
  todo.className = `notice ${live.status}`;
  todo.textContent = live.status === 'negative' ? t('negativeWhat') : live.status === 'low' ? t('lowWhat') : '';
  $('topup-how').textContent = t('topUpHow');
  renderContact($('contact'), state.me.contact);

  $('price').textContent = live.price ? t('pricePerKwh')(price4(live.price)) : '–';
  $('period-now').replaceChildren(...(live.period ? [dot(live.period), periodName(live.period)] : []));
  $('cost-hour').textContent = live.cost_per_hour ? money(live.cost_per_hour) : '–';
  $('power').textContent = live.power_kw ? `${live.power_kw} kW` : '–';
  $('today-kwh').textContent = live.today_kwh;
  fill($('today'), live.today.map((p) => el('li', {}, el('span', {}, dot(p.period), periodName(p.period)), el('span', { class: 'n' }, `${p.kwh} kWh`))), t('none'));
  $('updated').textContent = `${t('updated')} ${t('dateTime')(live.time)}`;
}

/** Whom to call, from the site file's site.contact: tap to call or write. */
function renderContact(node, contact) {
  if (!contact || (!contact.name && !contact.phone && !contact.email)) {
    node.textContent = t('contactFallback');
    return;
  }
  node.replaceChildren(
    `${t('call')}: `,
    ...[contact.name ? el('span', {}, contact.name) : null, contact.phone ? el('a', { href: `tel:${contact.phone.replace(/[^0-9+]/g, '')}` }, contact.phone) : null, contact.email ? el('a', { href: `mailto:${contact.email}` }, contact.email) : null]
      .filter(Boolean)
      .flatMap((x, i) => (i ? [' · ', x] : [x])),
  );
}

// ---- power supply (relay) -------------------------------------------------------------

/** Paid and the policy wants power back, but the meter does not read it yet. */
const restoring = (r) => Boolean(r && r.relay && r.mode === 'on' && r.power === 'off' && r.wanted === 'on');

/**
 * The supply card: shown where the site switches this account's relay (mode on), and in
 * dry-run only when there is something to say (a warning, a used-up balance). The state is
 * what the meters read back; the sentence is the API's, in the page's language.
 */
function renderRelay(_c, r) {
  const card = $('status-card');
  const show = Boolean(r && r.relay && (r.mode === 'on' || (r.mode === 'dry-run' && (r.warning !== 'none' || r.reason === 'debt'))));
  card.hidden = !show;
  if (!show) return;
  const back = restoring(r);
  const shown = back ? 'restoring' : r.power !== 'unknown' || r.mode === 'on' ? r.power : null;
  card.dataset.power = r.power;
  card.dataset.wanted = r.wanted;
  card.className = `card supply ${shown ?? ''}`;
  $('supply-state').textContent = shown ? t('supply')[shown] : '';
  $('supply-state').hidden = !shown;
  $('supply-state').className = `value ${shown === 'off' ? 'negative' : ''}`;
  $('supply-since').textContent = r.since && !back ? t('supplySince')(t('dateTime')(r.since)) : '';
  // "Balance sufficient, power on" under "Power on" says nothing more.
  $('supply-why').textContent = back || (r.power === 'on' && r.reason === 'balance-ok' && r.warning === 'none') ? '' : r.why;
  // "Top up now" while the top-up is closed (an open one may be waiting for its payment).
  $('supply-actions').hidden = !(r.restore_amount && state.topup && state.topup.screen === 'closed');
  $('supply-read').textContent = r.read_at ? t('supplyRead')(t('dateTime')(r.read_at)) : '';
}

// ---- online top-up ---------------------------------------------------------------------

function renderTopup(_c, o) {
  const enabled = Boolean(o && o.enabled);
  $('topup-how').hidden = enabled;
  if (!enabled) {
    $('topup-actions').hidden = true;
    return;
  }
  if (!state.topup) {
    state.topup = mountTopup($('topup-box'), {
      account: state.me.account,
      options: o,
      token: () => state.token,
      onPaid: afterPayment,
      onClose: () => {
        $('topup-actions').hidden = false;
        if (state.data.relay) renderRelay(ctx(), state.data.relay);
      },
    });
  }
  $('topup-actions').hidden = state.topup.screen !== 'closed';
  state.topup.render();
  // The supply card's "top up now" depends on the module being there.
  if (state.data.relay) renderRelay(ctx(), state.data.relay);
}

function openTopup(amount) {
  if (!state.topup) return;
  $('topup-actions').hidden = true;
  $('supply-actions').hidden = true;
  state.topup.open(amount).then(() => $('topup-box').scrollIntoView({ block: 'nearest' }));
}

/**
 * A top-up was credited: the balance worker moves the balance within a balance cycle and,
 * with relay control, the power comes back within one more; refresh often until both show.
 */
function afterPayment() {
  state.catchUp = { until: Date.now() + CATCH_UP_MS, balance: state.data.live ? state.data.live.balance : null };
  $('topup-updating').hidden = false;
  refresh();
}

/** Still waiting for the new balance, or for the power to come back after a payment? */
function catchingUp() {
  const cu = state.catchUp;
  if (!cu) return false;
  const moved = state.data.live && state.data.live.balance !== cu.balance;
  const r = state.data.relay;
  const powerBack = !r || !r.relay || r.mode !== 'on' || r.power !== 'off';
  if (moved) $('topup-updating').hidden = true;
  if (Date.now() > cu.until || (moved && powerBack)) {
    state.catchUp = null;
    $('topup-updating').hidden = true;
    return false;
  }
  return true;
}

function scheduleFast() {
  clearTimeout(state.fastTimer);
  if (!state.me || !(catchingUp() || restoring(state.data.relay))) return;
  state.fastTimer = setTimeout(() => refresh((s) => s.poll), FAST_MS);
}

// ---- the usage chart ---------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * 48 hourly bars (yesterday and today, local wall-clock hours), stacked by TOU period, a
 * "now" marker, and as many hour labels as fit without touching (every 3, 6, 12 or 24 h).
 */
function renderUsage(_c, { from, today, now, points }) {
  const W = Math.max(240, Math.round($('chart').clientWidth || 320));
  const H = 190;
  const left = 30;
  const right = 6;
  const top = 18;
  const bottom = 22;
  const hours = 48;
  const bw = (W - left - right) / hours;
  const hourOf = (time) => (time.slice(0, 10) === from ? 0 : time.slice(0, 10) === today ? 24 : -99) + Number(time.slice(11, 13));
  const stacks = new Map();
  for (const p of points) {
    const i = hourOf(p.time);
    if (i < 0 || i >= hours) continue;
    stacks.set(i, [...(stacks.get(i) || []), p]);
  }
  let max = 0;
  for (const s of stacks.values()) max = Math.max(max, s.reduce((a, p) => a + Number(p.kwh), 0));
  const top1 = max > 0 ? niceCeil(max) : 1;
  const y = (v) => H - bottom - (v / top1) * (H - bottom - top);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': t('usage') });
  for (const frac of [0, 0.5, 1]) {
    const v = top1 * frac;
    root.append(svg('line', { x1: left, y1: y(v), x2: W - right, y2: y(v), stroke: frac === 0 ? '#999' : '#e5e8e8' }));
    root.append(svg('text', { x: left - 4, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#5d6d7e', class: 'y-label' }, trim(v)));
  }
  for (const [i, s] of stacks) {
    let acc = 0;
    for (const p of s.sort((a, b) => PERIOD_ORDER.indexOf(b.period) - PERIOD_ORDER.indexOf(a.period))) {
      const v = Number(p.kwh);
      const r = svg('rect', { x: left + i * bw + 0.5, y: y(acc + v), width: Math.max(1, bw - 1), height: Math.max(0, y(acc) - y(acc + v)), fill: PERIOD_COLORS[p.period] });
      r.append(svg('title', {}, `${t('dateTime')(p.time)} ${periodName(p.period)} ${p.kwh} kWh`));
      root.append(r);
      acc += v;
    }
  }
  // Hour labels: the smallest step whose labels keep a gap (a label is about 30 px wide).
  const step = [3, 6, 12, 24].find((s) => s * bw >= 44) ?? 24;
  for (let h = 0; h <= hours; h += step) {
    const x = left + h * bw;
    const label = h % 24 === 0 ? `${(h === 0 ? from : h === 24 ? today : addDays(today, 1)).slice(5).replace('-', '/')}` : `${String(h % 24).padStart(2, '0')}:00`;
    root.append(svg('text', { x, y: H - 6, 'text-anchor': h === 0 ? 'start' : h === hours ? 'end' : 'middle', 'font-size': 10, fill: '#5d6d7e', class: 'x-label' }, label));
    root.append(svg('line', { x1: x, y1: H - bottom, x2: x, y2: H - bottom + 3, stroke: '#999' }));
  }
  // Now: a dashed line at the local time of the live figures.
  const nowH = 24 + Number(now.slice(11, 13)) + Number(now.slice(14, 16)) / 60;
  const nx = left + nowH * bw;
  root.append(svg('line', { x1: nx, y1: top - 2, x2: nx, y2: H - bottom, stroke: '#17202a', 'stroke-dasharray': '3 2', class: 'now-marker' }));
  root.append(svg('text', { x: nx, y: top - 6, 'text-anchor': nx > W - 40 ? 'end' : nx < left + 30 ? 'start' : 'middle', 'font-size': 10, fill: '#17202a', class: 'now-label' }, t('nowMark')));
  $('chart').replaceChildren(root);
  const used = PERIOD_ORDER.filter((p) => points.some((x) => x.period === p));
  $('legend').replaceChildren(...used.map((p) => el('li', {}, dot(p), periodName(p))));
}

/** 1, 2 or 5 times a power of ten at or above v (chart scale only). */
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((x) => x >= v);
}
const trim = (v) => String(Number(v.toPrecision(3)));

// ---- bills ---------------------------------------------------------------------------

async function loadBills(c) {
  const { bills } = await c.call(`/accounts/${acct()}/bills`);
  const month = state.billMonth && bills.some((b) => b.month === state.billMonth) ? state.billMonth : (bills.find((b) => b.total_amount !== '0.00') || bills[0] || {}).month;
  const statement = month ? await c.call(`/accounts/${acct()}/bills/${month}`) : null;
  state.billMonth = month;
  return { bills, statement };
}

function renderBills(_c, { bills, statement }) {
  fill(
    $('bills'),
    bills.map((b) =>
      el(
        'li',
        { class: b.month === state.billMonth ? 'current' : undefined },
        el('button', { class: 'link', type: 'button', onclick: () => showBill(b.month) }, t('month')(b.month)),
        el('span', { class: 'n' }, `${money(b.total_amount)} · ${b.kwh} kWh · ${b.status === 'closed' ? t('billClosed') : t('billOpen')}`),
      ),
    ),
    t('noBills'),
  );
  $('bill-detail').hidden = !statement;
  if (!statement) return;
  const st = statement;
  $('bill-title').textContent = `${t('month')(st.month)} · ${st.status === 'closed' ? t('billClosed') : t('billOpen')}`;
  const poolName = (id) => st.explain.pools.find((p) => p.id === id)?.name ?? id;
  $('bill-lines').tBodies[0].replaceChildren(
    ...st.lines.map((l) =>
      el(
        'tr',
        {},
        el('td', {}, el('div', { class: 'item' }, t('kind')[l.kind], l.pool ? ` · ${poolName(l.pool)}` : ''), el('div', { class: 'item-sub' }, dot(l.period), `${periodName(l.period)} · ${t('pricePerKwh')(price4(l.price))}`)),
        el('td', { class: 'n' }, l.kwh),
        el('td', { class: 'n' }, money(l.amount)),
      ),
    ),
  );
  const rows = [
    ['opening', st.opening_balance],
    ['payments', st.payments],
    ['charges', st.total_amount],
    ['closing', st.closing_balance],
  ];
  $('bill-sum').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, t(k)), el('dd', { 'data-k': k }, money(v))]));
}

async function showBill(month) {
  state.billMonth = month;
  state.data.bills = await sections.find((s) => s.id === 'bills').load(ctx());
  renderBills(ctx(), state.data.bills);
}

async function openStatement() {
  const blob = await api(`/accounts/${acct()}/bills/${state.billMonth}?format=html&lang=${currentLang()}`, { type: 'blob', token: state.token });
  window.open(URL.createObjectURL(new Blob([blob], { type: 'text/html' })), '_blank');
}

async function downloadCsv() {
  const blob = await api(`/accounts/${acct()}/bills/${state.billMonth}?format=csv`, { type: 'blob', token: state.token });
  const a = el('a', { href: URL.createObjectURL(blob), download: `${state.me.account}-${state.billMonth}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
}

// ---- payments, alerts, advice ----------------------------------------------------------

function renderPayments(_c, { payments }) {
  fill($('payments'), payments.map((p) => el('li', {}, el('span', {}, t('dateTime')(p.time)), el('span', { class: 'n' }, `+${money(p.amount)}`))), t('none'));
}

function renderAlerts(_c, { alerts }) {
  // The API words a tenant's alerts in its language (api/tenant-events.ts): no codes here.
  fill($('alerts'), alerts.slice(0, 10).map((a) => el('li', { class: 'alert' }, el('span', { class: 'when' }, t('dateTime')(a.time)), el('span', {}, a.detail))), t('none'));
}

function renderAdvice(_c, adv) {
  const tips = [];
  if (adv && adv.saving !== '0.00') tips.push(t('adviceShift')(adv.shift_kwh, periodName(adv.shift_to), money(adv.saving)));
  if (adv && adv.night_base_kw !== '0.000') tips.push(t('adviceNight')(adv.night_base_kw));
  fill($('advice'), tips.map((x) => el('li', {}, x)), t('none'));
}

// ---- signing in and out ------------------------------------------------------------------

function showLogin(message) {
  clearInterval(state.timer);
  clearTimeout(state.fastTimer);
  if (state.topup) state.topup.stop();
  state.topup = null;
  state.catchUp = null;
  $('topup-box').replaceChildren();
  $('topup-box').hidden = true;
  $('status-card').hidden = true;
  state.me = null;
  showLoginCard(message);
  applyTexts();
}

function errorText(err) {
  if (err instanceof ApiError && err.status === 429) return t('tooMany');
  if (err instanceof ApiError && err.status === 503) return t('unavailable');
  return t('failed');
}

async function start() {
  try {
    state.me = await api('/me', { token: state.token });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      const hadToken = Boolean(state.token);
      sessionStorage.removeItem('submeter.token');
      state.token = '';
      return showLogin(hadToken ? t('tokenInvalid') : /no longer signed in/.test(err.message) ? t('loginSignedOut') : '');
    }
    return showLogin(errorText(err));
  }
  if (state.me.role !== 'tenant') {
    // Managers and viewers have their own page (an overview of every account).
    location.replace('manage.html');
    return;
  }
  $('login').hidden = true;
  $('dash').hidden = false;
  $('logout').hidden = false;
  applyTexts();
  try {
    await loadAll();
    $('notice').hidden = true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin(t('loginSignedOut'));
    $('notice').hidden = false;
    $('notice').textContent = errorText(err);
  }
  clearInterval(state.timer);
  state.timer = setInterval(() => refresh((s) => s.poll), 30_000);
}

/** Reloads sections (all, or `only` those) in the background; a lost session shows the sign-in card. */
function refresh(only) {
  return loadAll(only)
    .then(() => ($('notice').hidden = true))
    .catch((err) => {
      if (err instanceof ApiError && err.status === 401) return showLogin(t('loginSignedOut'));
      $('notice').hidden = false;
      $('notice').textContent = errorText(err);
      scheduleFast();
    });
}

/** A login link opened: #login=<code>. The code leaves the address bar at once, then is used. */
async function useLoginLink() {
  const m = /(?:^#|&)login=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (!m) return true;
  history.replaceState(null, '', location.pathname + location.search);
  try {
    await api('/session', { method: 'POST', body: { code: m[1] } });
    sessionStorage.removeItem('submeter.token');
    state.token = '';
    return true;
  } catch (err) {
    showLogin(err instanceof ApiError && err.status === 401 ? t('loginLinkUsed') : errorText(err));
    return false;
  }
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = $('token').value.trim();
  sessionStorage.setItem('submeter.token', state.token);
  start();
});

$('logout').addEventListener('click', async () => {
  if (!state.token) await api('/session', { method: 'DELETE' }).catch(() => null);
  sessionStorage.removeItem('submeter.token');
  state.token = '';
  state.data = {};
  showLogin();
});

$('lang').addEventListener('click', async () => {
  setLang(currentLang() === 'zh' ? 'en' : 'zh');
  applyTexts();
  if (!state.me) return;
  renderAll();
  // Texts the API words (alerts) or formats (the bill) in the language: load them again.
  await loadAll((s) => s.lang).catch(() => null);
});

$('bill-print').addEventListener('click', () => openStatement());
$('topup-open').addEventListener('click', () => openTopup());
$('supply-topup').addEventListener('click', () => openTopup(state.data.relay && state.data.relay.restore_amount));
$('bill-csv').addEventListener('click', () => downloadCsv());

setLang(currentLang());
applyTexts();
if (await useLoginLink()) await start();
