// The manager page: every account with its balance, status, time left and power supply
// (sortable), recording a payment, issuing a tenant's one-time login link (with its QR
// code), holding or forcing a relay with a reason, and the month's printable statements and
// bill statistics. Managers sign in with a token, kept in
// this tab's sessionStorage and sent only as the Authorization header.
import { $, addDays, api, ApiError, el, showLoginCard } from './common.js';
import { currentLang, duration, money, setLang, t } from './i18n.js';

const state = { token: sessionStorage.getItem('submeter.token') || '', me: null, accounts: [], relays: new Map(), commands: { pending: [], failed: [] }, sort: { key: 'account', dir: 1 }, payFor: null, relayFor: null };

function applyTexts() {
  document.title = `${t('overview')} · ${state.me ? state.me.site_name : t('title')}`;
  $('title').textContent = state.me ? `${state.me.site_name} · ${t('overview')}` : t('title');
  $('lang').textContent = t('langSwitch');
  for (const e of document.querySelectorAll('[data-t]')) e.textContent = t(e.dataset.t);
}

/** Money text to integer fen, exactly, for sorting. */
const fen = (text) => BigInt(text.replace('.', ''));
const STATUS_ORDER = { negative: 0, low: 1, ok: 2 };
// Power off first (what needs a look), accounts without a relay last.
const POWER_ORDER = { off: 0, unknown: 1, on: 2 };
const powerRank = (a) => (state.relays.has(a.account) ? POWER_ORDER[state.relays.get(a.account).power] : 3);

function sorted() {
  const { key, dir } = state.sort;
  const cmp = {
    account: (a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0),
    name: (a, b) => a.name.localeCompare(b.name),
    balance: (a, b) => (fen(a.balance) < fen(b.balance) ? -1 : fen(a.balance) > fen(b.balance) ? 1 : 0),
    status: (a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status],
    // No projection (nothing spent) sorts last.
    hours: (a, b) => (a.hours_left === null ? Infinity : Number(a.hours_left)) - (b.hours_left === null ? Infinity : Number(b.hours_left)),
    relay: (a, b) => powerRank(a) - powerRank(b),
  }[key];
  return [...state.accounts].sort((a, b) => dir * cmp(a, b) || (a.account < b.account ? -1 : 1));
}

function renderAccounts() {
  const manager = state.me.role === 'manager';
  $('viewer-note').hidden = manager;
  for (const th of document.querySelectorAll('#accounts th[data-key]')) th.setAttribute('aria-sort', th.dataset.key === state.sort.key ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
  $('accounts').tBodies[0].replaceChildren(
    ...sorted().map((a) =>
      el(
        'tr',
        { 'data-account': a.account },
        el('td', { 'data-label': t('accountCol') }, a.account),
        el('td', { 'data-label': t('nameCol') }, a.name),
        el('td', { class: 'n', 'data-label': t('balanceCol') }, money(a.balance)),
        el('td', { 'data-label': t('statusCol') }, el('span', { class: `badge ${a.status}` }, t('status')[a.status])),
        el('td', { class: 'n', 'data-label': t('hoursCol') }, a.hours_left === null ? '–' : duration(a.hours_left)),
        el('td', { class: 'relay', 'data-label': t('relayCol') }, relayCell(state.relays.get(a.account))),
        el(
          'td',
          { class: 'actions' },
          manager ? el('button', { type: 'button', class: 'chip pay', onclick: () => openPay(a) }, t('recordPayment')) : null,
          manager ? el('button', { type: 'button', class: 'chip issue-link', onclick: () => issueLink(a) }, t('loginLink')) : null,
          state.relays.has(a.account) ? el('button', { type: 'button', class: 'chip relay', onclick: () => openRelay(a.account) }, t('relayControl')) : null,
        ),
      ),
    ),
  );
}

/** Power as the meters read back, and what a manager should know at a glance. */
function relayCell(r) {
  if (!r) return '–';
  const flags = [
    r.override ? t('override')[r.override.kind] : null,
    r.deferred && r.wanted === 'on' && r.deferred.reason !== 'protected-account' ? t('deferredCut') : null,
    r.mismatch ? t('mismatch') : null,
    state.commands.pending.some((c) => c.account === r.account) ? t('pendingCmd') : null,
  ].filter(Boolean);
  return [el('span', { class: `badge ${r.power === 'off' ? 'negative' : r.power === 'unknown' ? 'low' : 'ok'}`, 'data-power': r.power }, t('supply')[r.power]), flags.length ? el('div', { class: 'item-sub' }, flags.join(' · ')) : null];
}

async function loadAccounts() {
  const [accounts, relays] = await Promise.all([
    api('/accounts', { token: state.token }),
    // The relay list needs Redis only; without it the table still shows the balances.
    api('/relay', { token: state.token }).catch(() => ({ accounts: [], pending: [], failed: [] })),
  ]);
  state.accounts = accounts.accounts;
  state.relays = new Map(relays.accounts.map((r) => [r.account, r]));
  state.commands = { pending: relays.pending, failed: relays.failed };
  renderAccounts();
  if (state.relayFor) renderRelay();
}

// ---- power supply: state, hold / release / force with a reason (managers) -------------

function openRelay(account) {
  state.relayFor = account;
  $('relay-card').hidden = false;
  $('relay-result').hidden = true;
  $('relay-reason').value = '';
  $('relay-until').value = '';
  renderRelay();
  $('relay-card').scrollIntoView({ block: 'nearest' });
}

/** A relay's contacts as power: closed = on. */
const METER_POWER = { closed: 'on', open: 'off', unknown: 'unknown' };

function renderRelay() {
  const r = state.relays.get(state.relayFor);
  if (!r) return;
  const a = state.accounts.find((x) => x.account === r.account);
  const when = (x) => (x ? t('dateTime')(x) : '–');
  $('relay-title').textContent = `${t('relayControl')} · ${r.account} ${a ? a.name : r.name}`;
  $('relay-mode').textContent = t('relayMode')[r.mode];
  const facts = [
    [t('relayCol'), `${t('supply')[r.power]}${r.mismatch ? ` (${t('mismatch')})` : ''}`],
    [t('relayWanted'), `${t('supply')[r.wanted]} · ${t('supplySince')(when(r.since))}`],
    r.detail ? ['', r.detail] : null,
    r.deferred ? [t('deferredCut'), `${r.deferred.detail}${r.deferred.until ? ` → ${when(r.deferred.until)}` : ''}`] : null,
    r.override ? [t('override')[r.override.kind], `${r.override.reason} (${r.override.by}, ${when(r.override.at)}${r.override.until ? ` → ${when(r.override.until)}` : ''})`] : null,
    [t('balanceCol'), r.balance !== null ? money(r.balance) : '–'],
    r.restore_amount ? [t('restoreAmount'), money(r.restore_amount)] : null,
    [t('relayMeters'), r.meters.map((m) => `${m.meter}: ${t('supply')[METER_POWER[m.state]]}${m.read_at ? ` ${when(m.read_at)}` : ''}${m.error ? ` (${m.error})` : ''}`).join('; ')],
  ].filter(Boolean);
  $('relay-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const cmds = [...state.commands.pending, ...state.commands.failed].filter((c) => c.account === r.account);
  $('relay-commands').replaceChildren(
    ...cmds.map((c) => el('li', {}, el('span', {}, `${t('relayCommands')}: ${t('supply')[c.target]} · ${c.status}`), el('span', { class: 'n' }, `${when(c.updated)} ${c.meters.map((m) => m.reply ?? m.status).join(', ')}`))),
  );
  const manager = state.me.role === 'manager';
  $('relay-form').hidden = !manager;
  $('relay-hold').textContent = t('override').hold;
  $('relay-close').textContent = t('override')['force-close'];
  $('relay-trip').textContent = t('override')['force-trip'];
  $('relay-trip').disabled = r.protected;
  $('relay-release').disabled = !r.override;
}

async function relayAction(action) {
  const out = $('relay-result');
  out.hidden = false;
  const reason = $('relay-reason').value.trim();
  if (reason.length < 3) {
    out.className = 'notice negative';
    out.textContent = t('relayReason');
    $('relay-reason').focus();
    return;
  }
  const until = $('relay-until').value.trim();
  try {
    const r = await api(`/accounts/${encodeURIComponent(state.relayFor)}/relay/${action}`, { method: 'POST', body: { reason, ...(until && action !== 'release' ? { until } : {}) }, token: state.token });
    out.className = 'notice';
    out.textContent = r.mode === 'on' ? t('relayDone') : t('relayMode')[r.mode];
    await loadAccounts();
  } catch (err) {
    out.className = 'notice negative';
    out.textContent = err.message;
  }
}

function openPay(a) {
  state.payFor = a.account;
  $('pay-card').hidden = false;
  $('pay-title').textContent = `${t('recordPayment')} · ${a.account} ${a.name}`;
  $('pay-result').hidden = true;
  $('pay-amount').focus();
}

async function submitPay(e) {
  e.preventDefault();
  const body = { amount: $('pay-amount').value.trim(), reference: $('pay-reference').value.trim(), ...($('pay-time').value.trim() ? { time: $('pay-time').value.trim() } : {}) };
  const out = $('pay-result');
  out.hidden = false;
  try {
    const r = await api(`/accounts/${encodeURIComponent(state.payFor)}/payments`, { method: 'POST', body, token: state.token });
    out.className = 'notice';
    out.textContent = `${r.status === 'recorded' ? t('recorded') : t('duplicate')}: ${r.payment.account} ${money(r.payment.amount)} · ${r.payment.reference} · ${t('dateTime')(r.payment.time)}`;
    await loadAccounts();
  } catch (err) {
    out.className = 'notice negative';
    out.textContent = err.message;
  }
}

async function issueLink(a) {
  const r = await api(`/accounts/${encodeURIComponent(a.account)}/login-links`, { method: 'POST', body: { base_url: `${location.origin}/`, label: a.name }, token: state.token });
  $('link-card').hidden = false;
  $('link-title').textContent = t('linkFor')(`${a.account} ${a.name}`);
  $('link-hint').textContent = t('linkHint')(t('dateTime')(r.expires));
  // An <img> of the SVG: shown, never run (the page's CSP allows data: images only).
  $('link-qr').src = `data:image/svg+xml;base64,${btoa(r.qr_svg)}`;
  $('link-url').textContent = r.url;
  $('link-card').scrollIntoView({ block: 'nearest' });
}

async function openBlob(path, name) {
  const blob = await api(path, { type: 'blob', token: state.token });
  const url = URL.createObjectURL(blob);
  if (name) {
    const a = el('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
  } else window.open(url, '_blank');
}

function showLogin(message) {
  state.me = null;
  showLoginCard(message);
  applyTexts();
}

async function start() {
  if (!state.token) return showLogin();
  try {
    state.me = await api('/me', { token: state.token });
  } catch (err) {
    sessionStorage.removeItem('submeter.token');
    state.token = '';
    return showLogin(err instanceof ApiError && err.status === 429 ? t('tooMany') : t('tokenInvalid'));
  }
  if (state.me.role === 'tenant') {
    location.replace('./');
    return;
  }
  $('login').hidden = true;
  $('dash').hidden = false;
  $('logout').hidden = false;
  applyTexts();
  // Default month: the last one that is over.
  const today = new Date().toISOString().slice(0, 10);
  $('month').value = addDays(`${today.slice(0, 7)}-01`, -1).slice(0, 7);
  try {
    await loadAccounts();
  } catch (err) {
    $('notice').hidden = false;
    $('notice').textContent = err.status === 503 ? t('unavailable') : t('failed');
  }
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = $('token').value.trim();
  sessionStorage.setItem('submeter.token', state.token);
  start();
});
$('logout').addEventListener('click', () => {
  sessionStorage.removeItem('submeter.token');
  state.token = '';
  showLogin();
});
$('lang').addEventListener('click', () => {
  setLang(currentLang() === 'zh' ? 'en' : 'zh');
  applyTexts();
  if (state.me) renderAccounts();
  if (state.me && state.relayFor) renderRelay();
});
for (const b of document.querySelectorAll('[data-relay]')) b.addEventListener('click', () => relayAction(b.dataset.relay));
$('relay-cancel').addEventListener('click', () => {
  state.relayFor = null;
  $('relay-card').hidden = true;
});
for (const th of document.querySelectorAll('#accounts th[data-key]')) {
  th.querySelector('button').addEventListener('click', () => {
    state.sort = { key: th.dataset.key, dir: state.sort.key === th.dataset.key ? -state.sort.dir : 1 };
    renderAccounts();
  });
}
$('pay-form').addEventListener('submit', submitPay);
$('pay-cancel').addEventListener('click', () => ($('pay-card').hidden = true));
$('link-copy').addEventListener('click', async () => {
  await navigator.clipboard?.writeText($('link-url').textContent).catch(() => null);
  $('link-copy').textContent = t('copied');
});
$('print-month').addEventListener('click', () => openBlob(`/months/${$('month').value}/statements?lang=${currentLang()}`));
$('stats-csv').addEventListener('click', () => {
  const m = $('month').value;
  const from = `${m}-01`;
  const to = addDays(addDays(from, 31).slice(0, 7) + '-01', 0);
  return openBlob(`/stats/bills?from=${from}&to=${to}&format=csv`, `bills-${m}.csv`);
});

setLang(currentLang());
applyTexts();
start();
