// The manager page: every account with its balance, status and time left (sortable),
// recording a payment, issuing a tenant's one-time login link (with its QR code), and the
// month's printable statements and bill statistics. Managers sign in with a token, kept in
// this tab's sessionStorage and sent only as the Authorization header.
import { $, addDays, api, ApiError, el, showLoginCard } from './common.js';
import { currentLang, duration, money, setLang, t } from './i18n.js';

const state = { token: sessionStorage.getItem('submeter.token') || '', me: null, accounts: [], sort: { key: 'account', dir: 1 }, payFor: null };

function applyTexts() {
  document.title = `${t('overview')} · ${state.me ? state.me.site_name : t('title')}`;
  $('title').textContent = state.me ? `${state.me.site_name} · ${t('overview')}` : t('title');
  $('lang').textContent = t('langSwitch');
  for (const e of document.querySelectorAll('[data-t]')) e.textContent = t(e.dataset.t);
}

/** Money text to integer fen, exactly, for sorting. */
const fen = (text) => BigInt(text.replace('.', ''));
const STATUS_ORDER = { negative: 0, low: 1, ok: 2 };

function sorted() {
  const { key, dir } = state.sort;
  const cmp = {
    account: (a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0),
    name: (a, b) => a.name.localeCompare(b.name),
    balance: (a, b) => (fen(a.balance) < fen(b.balance) ? -1 : fen(a.balance) > fen(b.balance) ? 1 : 0),
    status: (a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status],
    // No projection (nothing spent) sorts last.
    hours: (a, b) => (a.hours_left === null ? Infinity : Number(a.hours_left)) - (b.hours_left === null ? Infinity : Number(b.hours_left)),
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
        el(
          'td',
          { class: 'actions' },
          manager ? el('button', { type: 'button', class: 'chip pay', onclick: () => openPay(a) }, t('recordPayment')) : null,
          manager ? el('button', { type: 'button', class: 'chip issue-link', onclick: () => issueLink(a) }, t('loginLink')) : null,
        ),
      ),
    ),
  );
}

async function loadAccounts() {
  state.accounts = (await api('/accounts', { token: state.token })).accounts;
  renderAccounts();
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
