// Online top-up on the tenant page (issue 14): choose an amount -> the provider's QR code or
// pay link -> the order is polled until the provider's notification has credited it -> the
// page is told (onPaid) and shows the new balance without a reload. A plain browser module
// (no build step, the page's CSP: no inline script, no eval):
//
//   import { mount } from './topup.js';
//   const topup = mount(element, { account: 'A101', token: () => token, onPaid: (order) => refresh() });
//   topup.open('12.35');  // show the form, amount prefilled
//   topup.render();       // again in the page's current language (after a switch)
//
// It signs its requests as the page does (common.js `api`): the device session cookie, or a
// bearer token when `token()` returns one. Texts come from i18n.js, one language at a time.
// Amounts stay decimal strings as the API formats them; fen only to check the limits.
import { api, ApiError, el } from './common.js';
import { money, t } from './i18n.js';

/** Money text with at most 2 decimals to fen, exactly (digits, not binary fractions), or null. */
export function toFen(text) {
  const m = /^\s*(\d{1,10})(?:\.(\d{1,2}))?\s*$/.exec(String(text));
  return m ? BigInt(m[1]) * 100n + BigInt((m[2] || '').padEnd(2, '0')) : null;
}

/** The larger of two money texts (a restore amount below the site's minimum top-up becomes the minimum). */
function atLeast(text, min) {
  const a = toFen(text);
  const b = toFen(min);
  if (a === null) return min;
  const fen = a > b ? a : b;
  return `${fen / 100n}.${String(fen % 100n).padStart(2, '0')}`;
}

/**
 * Mounts the top-up card in `root`.
 * @param {HTMLElement} root
 * @param {{ account: string, token?: () => string, options?: object, onPaid?: (order: object) => void, onClose?: () => void, pollMs?: number }} opts
 */
export function mount(root, opts) {
  const call = (path, init = {}) => api(path, { ...init, token: opts.token ? opts.token() : '' });
  const acct = encodeURIComponent(opts.account);
  const pollMs = opts.pollMs ?? 2000;
  // What is shown, kept as data so that render() can draw it again in another language.
  const view = { screen: 'closed', amount: '', provider: undefined, order: null, error: null };
  let options = opts.options ?? null;
  let timer = null;
  let gen = 0;

  const ready = options ? Promise.resolve(options) : call('/topup/options').then((o) => (options = o));

  function errorText(err) {
    if (err instanceof ApiError && err.status === 429) return t('tooMany');
    if (err instanceof ApiError && err.status === 503) return t('unavailable');
    return t('topupFailed');
  }

  function stopPolling() {
    gen++;
    clearTimeout(timer);
  }

  function form() {
    const o = options;
    const amount = el('input', { id: 'topup-amount', type: 'text', inputmode: 'decimal', autocomplete: 'off', placeholder: `${o.min} – ${o.max}`, value: view.amount, oninput: (e) => (view.amount = e.target.value) });
    const presets = el(
      'div',
      { class: 'presets', role: 'group', 'aria-label': t('topupAmount') },
      ...o.presets.map((p) =>
        el('button', { type: 'button', class: `chip preset${toFen(view.amount) === toFen(p) ? ' on' : ''}`, 'data-amount': p, onclick: () => ((view.amount = p), render()) }, money(p)),
      ),
    );
    const providers = el(
      'div',
      { class: 'providers', role: 'radiogroup', 'aria-label': t('topupPayWith') },
      ...o.providers.map((p) =>
        el('label', { class: 'provider' }, el('input', { type: 'radio', name: 'topup-provider', value: p, checked: view.provider === p, onchange: () => (view.provider = p) }), ` ${t('provider')[p] ?? p}`),
      ),
    );
    const pay = el('button', { type: 'submit', id: 'topup-pay' }, t('topupPay'));
    const submit = async (ev) => {
      ev.preventDefault();
      const fen = toFen(view.amount);
      if (fen === null || fen < toFen(o.min) || fen > toFen(o.max)) {
        view.error = () => t('topupRange')(money(o.min), money(o.max));
        return render();
      }
      view.error = null;
      pay.disabled = true;
      try {
        view.order = await call(`/accounts/${acct}/topups`, { method: 'POST', body: { amount: view.amount.trim(), provider: view.provider } });
        view.screen = 'waiting';
        render();
        poll();
      } catch (err) {
        view.error = () => errorText(err);
        render();
      }
    };
    return [
      el(
        'form',
        { class: 'topup-form', onsubmit: submit },
        presets,
        el('label', { for: 'topup-amount' }, t('topupAmount')),
        amount,
        el('p', { class: 'label' }, o.providers.length > 1 ? t('topupPayWith') : `${t('topupPayWith')}: ${t('provider')[o.providers[0]] ?? o.providers[0]}`),
        o.providers.length > 1 ? providers : null,
        el('p', { class: 'actions' }, pay, el('button', { type: 'button', class: 'chip', id: 'topup-close', onclick: close }, t('topupClose'))),
        view.error ? el('p', { class: 'notice negative', role: 'alert', id: 'topup-error' }, view.error()) : null,
      ),
      el('p', { class: 'hint' }, t('topupHint')(o.expiry_minutes)),
    ];
  }

  function waiting() {
    const o = view.order;
    const open = o.state === 'created';
    const scan = t('topupScan');
    const pay = !open
      ? null
      : o.qr_image
        ? el('figure', { class: 'pay-qr' }, el('img', { id: 'topup-qr', src: o.qr_image, alt: t('topupQrAlt'), width: '220', height: '220' }), el('figcaption', {}, scan[o.provider] ?? scan.other))
        : o.pay_url
          ? el('p', {}, el('a', { id: 'topup-link', class: 'button', href: o.pay_url, target: '_blank', rel: 'noopener noreferrer' }, t('topupLink')))
          : null;
    return [
      el('p', { class: 'order' }, el('b', {}, money(o.amount)), ` · ${t('provider')[o.provider] ?? o.provider}`),
      pay,
      el('p', { id: 'topup-state', class: `topup-state ${o.state}`, 'data-state': o.state, 'aria-live': 'polite' }, t('topupState')[o.state] ?? t('topupFailed')),
      open ? el('p', { class: 'hint' }, t('topupBefore')(t('dateTime')(o.expires_at))) : null,
      el('p', { class: 'actions' }, o.state === 'paid' ? el('button', { type: 'button', class: 'chip', id: 'topup-done', onclick: close }, t('topupClose')) : el('button', { type: 'button', class: 'chip', id: 'topup-back', onclick: () => open_() }, t('topupBack'))),
    ];
  }

  /** Polls the order while it waits for the payment; another screen stops it (generation). */
  function poll() {
    const mine = ++gen;
    const tick = async () => {
      if (mine !== gen) return;
      try {
        const o = await call(`/accounts/${acct}/topups/${encodeURIComponent(view.order.order)}`);
        if (mine !== gen) return;
        const changed = o.state !== view.order.state;
        view.order = o;
        if (changed) render();
        if (o.state === 'paid') {
          if (typeof opts.onPaid === 'function') opts.onPaid(o);
          return;
        }
        if (o.state !== 'created') return;
      } catch {
        // A blip (network, 503): keep polling; the order is safe at the provider.
      }
      timer = setTimeout(tick, pollMs);
    };
    timer = setTimeout(tick, pollMs);
  }

  function render() {
    if (view.screen === 'closed' || !options || !options.enabled) {
      root.hidden = true;
      root.replaceChildren();
      return;
    }
    root.hidden = false;
    root.replaceChildren(el('h3', {}, t('topupTitle')), ...(view.screen === 'form' ? form() : waiting()));
  }

  /** Shows the form; `amount` (e.g. what brings the power back) is prefilled, at least the site's minimum. */
  async function open_(amount) {
    stopPolling();
    await ready;
    if (!options.enabled) return;
    view.screen = 'form';
    view.order = null;
    view.error = null;
    view.provider = view.provider ?? options.providers[0];
    if (amount) view.amount = atLeast(amount, options.min);
    else if (!view.amount) view.amount = options.presets[0] ?? '';
    render();
    root.querySelector('#topup-amount')?.focus();
  }

  function close() {
    stopPolling();
    view.screen = 'closed';
    render();
    if (typeof opts.onClose === 'function') opts.onClose();
  }

  return { ready, open: open_, close, render, stop: stopPolling, get screen() { return view.screen; } };
}

export const SubmeterTopup = { mount };
