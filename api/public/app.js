// The tenant page: plain browser JavaScript, no build step. Talks only to /api/v1 with the
// bearer token the user typed; the token lives in sessionStorage (gone when the tab
// closes) and never in a URL. Figures are shown exactly as the API formats them (decimal
// strings); numbers are parsed only to size the chart's bars.
'use strict';

const PERIOD_NAMES = { sharp: '尖峰 Sharp', peak: '高峰 Peak', flat: '平段 Flat', valley: '低谷 Valley', deep_valley: '深谷 Deep valley' };
const KIND_NAMES = { own: '本户 Own meter', common: '公共 Common', loss: '线损 Loss' };
const STATUS_NAMES = { ok: '正常 OK', low: '余额不足 Low', negative: '欠费 Overdrawn' };
const PERIOD_ORDER = ['sharp', 'peak', 'flat', 'valley', 'deep_valley'];
const COLORS = { sharp: '#922b21', peak: '#e67e22', flat: '#5dade2', valley: '#229954', deep_valley: '#145a32' };

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('submeter.token') || '';
let me = null;
let account = null;
let timer = null;

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, type = 'json') {
  const res = await fetch(`/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, body);
  }
  return type === 'json' ? res.json() : type === 'blob' ? res.blob() : res.text();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function dot(period) {
  const d = el('span', { class: 'dot' });
  d.style.background = COLORS[period]; // CSSOM, not a style attribute: allowed by the page's CSP
  return d;
}

function fill(list, items, empty) {
  list.replaceChildren(...(items.length ? items : [el('li', { class: 'hint' }, empty)]));
}

function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function showLogin(message) {
  clearInterval(timer);
  $('dash').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message || '';
}

async function login(t) {
  token = t;
  try {
    me = await api('/me');
  } catch (err) {
    sessionStorage.removeItem('submeter.token');
    token = '';
    showLogin(err.status === 401 ? '令牌无效 Invalid token' : err.status === 429 ? '尝试次数过多，请稍后再试 Too many attempts, try later' : `登录失败 Login failed: ${err.message}`);
    return;
  }
  sessionStorage.setItem('submeter.token', token);
  $('login').hidden = true;
  $('dash').hidden = false;
  $('logout').hidden = false;
  $('title').firstChild.textContent = `${me.site_name} `;
  if (me.role === 'tenant') {
    account = me.account;
    $('picker-row').hidden = true;
  } else {
    const { accounts } = await api('/accounts');
    const picker = $('account-picker');
    picker.replaceChildren(...accounts.map((a) => el('option', { value: a.account }, `${a.account} ${a.name} · ${a.balance}`)));
    account = accounts[0] && accounts[0].account;
    $('picker-row').hidden = false;
  }
  await refresh();
  clearInterval(timer);
  timer = setInterval(() => refreshLive().catch(() => {}), 30_000);
}

async function refresh() {
  if (!account) return;
  $('who').textContent = me.role === 'tenant' ? `${me.account_name} (${me.account})` : `${me.role} · ${account}`;
  $('currency').textContent = me.currency;
  const live = await refreshLive();
  const today = live.time.slice(0, 10);
  await Promise.all([drawUsage(today), loadBills(), loadPayments(), loadAlerts(), loadAdvice(today)]);
}

async function refreshLive() {
  const a = encodeURIComponent(account);
  const live = await api(`/accounts/${a}/live`);
  $('balance').textContent = live.balance;
  const badge = $('status-badge');
  badge.textContent = STATUS_NAMES[live.status];
  badge.className = `badge ${live.status}`;
  $('hours-left').textContent = live.hours_left ? `约 ${live.hours_left} 小时 · about ${live.hours_left} h left` : '';
  $('price').textContent = live.price ?? '–';
  $('period-now').textContent = live.period ? PERIOD_NAMES[live.period] : '';
  $('cost-hour').textContent = live.cost_per_hour ?? '–';
  $('power').textContent = live.power_kw ? `${live.power_kw} kW` : '';
  $('today-kwh').textContent = live.today_kwh;
  fill($('today'), live.today.map((p) => el('li', {}, el('span', {}, dot(p.period), PERIOD_NAMES[p.period]), el('span', {}, `${p.kwh} kWh`))), '—');
  $('updated').textContent = `更新于 Updated ${live.time}`;
  return live;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

async function drawUsage(today) {
  const from = addDays(today, -1);
  const to = addDays(today, 1);
  const { points } = await api(`/accounts/${encodeURIComponent(account)}/usage?from=${from}&to=${to}&interval=1h`);
  // Drawn at the container's own width so labels keep their size on a phone.
  const W = Math.max(300, Math.round($('chart').clientWidth || 720)), H = 200, left = 34, bottom = 22, top = 8;
  const hours = 48;
  const bw = (W - left) / hours;
  // Stack each hour's periods; kWh parsed as numbers for geometry only.
  const stacks = new Map();
  for (const p of points) {
    const i = Math.round((Date.parse(p.time) - Date.parse(`${from}T00:00:00${p.time.slice(19)}`)) / 3_600_000);
    if (i < 0 || i >= hours) continue;
    const s = stacks.get(i) || [];
    s.push(p);
    stacks.set(i, s);
  }
  let max = 0;
  for (const s of stacks.values()) max = Math.max(max, s.reduce((a, p) => a + Number(p.kwh), 0));
  max = max > 0 ? max * 1.1 : 1;
  const y = (v) => H - bottom - (v / max) * (H - bottom - top);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
  root.append(svg('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: '#999' }));
  for (const frac of [0.5, 1]) {
    const v = (max / 1.1) * frac;
    root.append(svg('line', { x1: left, y1: y(v), x2: W, y2: y(v), stroke: '#e5e8e8' }));
    const t = svg('text', { x: left - 4, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5d6d7e' });
    t.textContent = v.toPrecision(2);
    root.append(t);
  }
  for (const [i, s] of stacks) {
    let acc = 0;
    for (const p of s.sort((a, b) => PERIOD_ORDER.indexOf(b.period) - PERIOD_ORDER.indexOf(a.period))) {
      const v = Number(p.kwh);
      const r = svg('rect', { x: left + i * bw + 1, y: y(acc + v), width: Math.max(1, bw - 2), height: Math.max(0, y(acc) - y(acc + v)), fill: COLORS[p.period] });
      const title = svg('title', {});
      title.textContent = `${p.time.slice(5, 16).replace('T', ' ')} ${PERIOD_NAMES[p.period]} ${p.kwh} kWh`;
      r.append(title);
      root.append(r);
      acc += v;
    }
  }
  for (let h = 0; h <= hours; h += 6) {
    const t = svg('text', { x: left + h * bw, y: H - 6, 'text-anchor': h === hours ? 'end' : 'middle', 'font-size': 11, fill: '#5d6d7e' });
    t.textContent = h % 24 === 0 ? (h === 0 ? from.slice(5) : h === 24 ? today.slice(5) : to.slice(5)) : `${String(h % 24).padStart(2, '0')}h`;
    root.append(t);
  }
  $('chart').replaceChildren(root);
  const used = PERIOD_ORDER.filter((p) => points.some((x) => x.period === p));
  $('legend').replaceChildren(...used.map((p) => el('li', {}, dot(p), PERIOD_NAMES[p])));
}

async function loadBills() {
  const { bills } = await api(`/accounts/${encodeURIComponent(account)}/bills`);
  fill(
    $('bills'),
    bills.map((b) =>
      el('li', {}, el('button', { class: 'link', onclick: () => showBill(b.month) }, `${b.month}`), el('span', {}, `${b.total_amount} ${me.currency} · ${b.kwh} kWh · ${b.status === 'closed' ? '已结账 closed' : '未结账 open'}`)),
    ),
    '暂无账单 No bills yet',
  );
  const first = bills.find((b) => b.total_amount !== '0.00') || bills[0];
  if (first) await showBill(first.month);
}

let billMonth = null;
async function showBill(month) {
  billMonth = month;
  const st = await api(`/accounts/${encodeURIComponent(account)}/bills/${month}`);
  $('bill-detail').hidden = false;
  $('bill-title').textContent = `${st.month} (${st.from} – ${st.to}) ${st.status === 'closed' ? '已结账 closed' : '未结账 open'}`;
  $('bill-lines').tBodies[0].replaceChildren(
    ...st.lines.map((l) => el('tr', {}, el('td', {}, `${KIND_NAMES[l.kind]}${l.pool ? ` · ${l.pool}` : ''}`), el('td', {}, PERIOD_NAMES[l.period]), el('td', { class: 'n' }, l.kwh), el('td', { class: 'n' }, l.price), el('td', { class: 'n' }, l.amount))),
  );
  const rows = [
    ['期初余额 Opening', st.opening_balance],
    ['充值 Payments', st.payments],
    ['电费 Charges', st.total_amount],
    ['期末余额 Closing', st.closing_balance],
  ];
  $('bill-sum').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-k': k.split(' ').pop().toLowerCase() }, v)]));
}

async function openStatement(lang) {
  const blob = await api(`/accounts/${encodeURIComponent(account)}/bills/${billMonth}?format=html&lang=${lang}`, 'blob');
  window.open(URL.createObjectURL(new Blob([blob], { type: 'text/html' })), '_blank');
}

async function downloadCsv() {
  const blob = await api(`/accounts/${encodeURIComponent(account)}/bills/${billMonth}?format=csv`, 'blob');
  const a = el('a', { href: URL.createObjectURL(blob), download: `${account}-${billMonth}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
}

async function loadPayments() {
  const { payments } = await api(`/accounts/${encodeURIComponent(account)}/payments`);
  fill($('payments'), payments.map((p) => el('li', {}, el('span', {}, p.time.slice(0, 16).replace('T', ' ')), el('span', {}, `+${p.amount} ${me.currency}`))), '暂无 None');
}

async function loadAlerts() {
  const { alerts } = await api(`/accounts/${encodeURIComponent(account)}/alerts`);
  fill($('alerts'), alerts.slice(0, 10).map((a) => el('li', {}, el('span', {}, a.time.slice(0, 16).replace('T', ' ')), el('span', {}, `${a.kind}: ${a.detail}`))), '暂无 None');
}

async function loadAdvice(today) {
  try {
    const adv = await api(`/accounts/${encodeURIComponent(account)}/advice?from=${addDays(today, -30)}&to=${today}`);
    fill($('advice'), (adv.tips || []).map((t) => el('li', {}, t)), '暂无 None');
  } catch {
    fill($('advice'), [], '暂无 None');
  }
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  login($('token').value.trim());
});
$('logout').addEventListener('click', () => {
  sessionStorage.removeItem('submeter.token');
  token = '';
  me = null;
  showLogin();
});
$('account-picker').addEventListener('change', (e) => {
  account = e.target.value;
  refresh().catch((err) => showLogin(err.message));
});
$('bill-print-zh').addEventListener('click', () => openStatement('zh'));
$('bill-print-en').addEventListener('click', () => openStatement('en'));
$('bill-csv').addEventListener('click', () => downloadCsv());

if (token) login(token);
