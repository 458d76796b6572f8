// Online top-up for the tenant page (issue 14): a self-contained module, plain browser
// JavaScript with no build step, that the page mounts where it wants the "top up" card:
//
//   <script src="topup.js" defer></script>
//   SubmeterTopup.mount(element, { token: () => token, account: 'A101', onPaid: (order) => refresh() })
//
// It reads the site's presets and limits (GET /api/v1/topup/options), orders a top-up
// (POST /api/v1/accounts/{a}/topups), shows the QR code (WeChat Pay, Alipay: an SVG data
// URL, allowed by the page's CSP) or the pay link (Stripe), and polls the order until the
// provider's notification has credited it; then it calls onPaid so the page shows the new
// balance without a reload. Amounts stay decimal strings as the API formats them.
'use strict';

(function () {
  const PROVIDER_NAMES = { wechat: '微信支付 WeChat Pay', alipay: '支付宝 Alipay', stripe: '银行卡 Card (Stripe)' };
  const SCAN_TEXT = { wechat: '请用微信扫码支付 Scan with WeChat', alipay: '请用支付宝扫码支付 Scan with Alipay' };
  const STATE_TEXT = {
    created: '等待支付 Waiting for payment',
    paid: '已到账 Credited',
    expired: '已过期 Expired',
    refunded: '已退款 Refunded',
    review: '物业核对中 Being checked by the property',
  };

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  /** Money text with at most 2 decimals to fen, exactly (no binary fractions), or null. */
  function toFen(text) {
    const m = /^\s*(\d{1,10})(?:\.(\d{1,2}))?\s*$/.exec(text);
    return m ? Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0')) : null;
  }

  function mount(root, opts) {
    const base = opts.base || '/api/v1';
    const account = opts.account;
    let timer = null;
    // Each screen has a generation; a poll of an earlier screen stops itself.
    let gen = 0;

    async function call(path, init) {
      const res = await fetch(base + path, Object.assign({}, init, { headers: Object.assign({ Authorization: 'Bearer ' + opts.token() }, init && init.body ? { 'Content-Type': 'application/json' } : {}) }));
      let body = null;
      try { body = await res.json(); } catch (e) { /* no JSON */ }
      if (!res.ok) throw new Error((body && body.message) || 'HTTP ' + res.status);
      return body;
    }

    function show(...nodes) {
      root.replaceChildren(el('h2', {}, '充值 Top up'), ...nodes);
    }

    async function start() {
      gen++;
      clearTimeout(timer);
      let o;
      try {
        o = await call('/topup/options');
      } catch (err) {
        show(el('p', { class: 'error', role: 'alert' }, err.message));
        return;
      }
      if (!o.enabled) {
        show(el('p', { class: 'hint' }, '本物业暂不支持在线充值。Online top-up is not available here.'));
        return;
      }
      let provider = o.providers[0];
      const amount = el('input', { type: 'text', inputmode: 'decimal', id: 'topup-amount', 'aria-label': '金额 Amount', placeholder: o.min + ' – ' + o.max, value: o.presets[0] || '' });
      const presets = el('div', { class: 'presets', role: 'group', 'aria-label': '金额 Amount' },
        ...o.presets.map((p) => el('button', { type: 'button', class: 'preset', 'data-amount': p, onclick: () => { amount.value = p; } }, p + ' ' + o.currency)));
      const providers = el('div', { class: 'providers', role: 'radiogroup', 'aria-label': '支付方式 Pay with' },
        ...o.providers.map((p, i) => el('label', {}, el('input', Object.assign({ type: 'radio', name: 'topup-provider', value: p, onchange: () => { provider = p; } }, i === 0 ? { checked: '' } : {})), ' ' + (PROVIDER_NAMES[p] || p))));
      const error = el('p', { class: 'error', role: 'alert', hidden: '' });
      const pay = el('button', { type: 'submit', id: 'topup-pay' }, '去支付 Pay');
      const form = el('form', { class: 'topup-form', onsubmit: async (ev) => {
        ev.preventDefault();
        error.hidden = true;
        const fen = toFen(amount.value);
        if (fen === null || fen < toFen(o.min) || fen > toFen(o.max)) {
          error.textContent = '金额须在 ' + o.min + ' 至 ' + o.max + ' 之间，最多两位小数。The amount must be ' + o.min + ' to ' + o.max + ', at most 2 decimals.';
          error.hidden = false;
          return;
        }
        pay.disabled = true;
        try {
          const order = await call('/accounts/' + encodeURIComponent(account) + '/topups', { method: 'POST', body: JSON.stringify({ amount: amount.value.trim(), provider }) });
          waiting(order);
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
          pay.disabled = false;
        }
      } }, presets, el('label', { for: 'topup-amount' }, '金额 Amount (' + o.currency + ')'), amount, providers, pay, error);
      show(form, el('p', { class: 'hint' }, '订单 ' + o.expiry_minutes + ' 分钟内有效，到账后余额自动更新。An order can be paid for ' + o.expiry_minutes + ' minutes; the balance updates by itself.'));
    }

    function waiting(order) {
      const status = el('p', { class: 'topup-state', id: 'topup-state', 'data-state': order.state, 'aria-live': 'polite' }, STATE_TEXT[order.state] || order.state);
      const pay = order.qr_image
        ? el('figure', { class: 'qr' }, el('img', { src: order.qr_image, alt: '支付二维码 Payment QR code', width: '220', height: '220', id: 'topup-qr' }), el('figcaption', {}, SCAN_TEXT[order.provider] || '扫码支付 Scan to pay'))
        : order.pay_url
          ? el('p', {}, el('a', { href: order.pay_url, target: '_blank', rel: 'noopener noreferrer', id: 'topup-link', class: 'button' }, '打开支付页面 Open the payment page'))
          : null;
      const back = el('button', { type: 'button', class: 'link', onclick: () => start() }, '返回 Back');
      show(el('p', {}, order.amount + ' ' + order.currency + ' · ' + (PROVIDER_NAMES[order.provider] || order.provider)), pay, status, el('p', { class: 'hint' }, '有效期至 Pay before ' + order.expires_at.slice(11, 16)), back);
      const mine = ++gen;
      const poll = async () => {
        if (mine !== gen) return;
        try {
          const o = await call('/accounts/' + encodeURIComponent(account) + '/topups/' + encodeURIComponent(order.order));
          if (mine !== gen) return;
          status.textContent = STATE_TEXT[o.state] || o.state;
          status.dataset.state = o.state;
          if (o.state === 'paid') {
            if (pay) pay.remove();
            if (typeof opts.onPaid === 'function') opts.onPaid(o);
            return;
          }
          if (o.state !== 'created') {
            if (pay) pay.remove();
            return;
          }
        } catch (err) {
          // A blip (network, 503): keep polling; the order is safe at the provider.
        }
        timer = setTimeout(poll, opts.pollMs || 2000);
      };
      timer = setTimeout(poll, opts.pollMs || 2000);
    }

    start();
    return { refresh: start, stop: () => { gen++; clearTimeout(timer); } };
  }

  window.SubmeterTopup = { mount };
})();
