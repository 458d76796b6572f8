import type { TopupProviders } from '../../lib/topup/index.ts';
import type { WechatSim } from '../../sim/index.ts';

/**
 * The demo's online top-up (issue 14): a simulated WeChat Pay with keys made at start, and
 * one tenant paying from the "phone": order -> QR code -> the provider pays and notifies ->
 * the ledger and the live balance move by themselves.
 */

/** The site-file block the demo adds; credentials come from the simulator, never the file. */
export const DEMO_TOPUP_YAML = '\ntopup:\n  providers: [wechat]\n  presets: [50, 100, 200]\n';

export async function startDemoTopup(): Promise<{ sim: WechatSim; providers: TopupProviders; stop: () => Promise<void> }> {
  const { WechatSim } = await import('../../sim/index.ts');
  const { WechatPay } = await import('../../lib/topup/index.ts');
  const sim = await new WechatSim().start();
  return { sim, providers: new Map([['wechat', new WechatPay(sim.credentials)]]), stop: () => sim.stop() };
}

export async function demoTopup(o: { apiUrl: string; account: string; tenantToken: string; sim: WechatSim; say: (t: string) => void }): Promise<void> {
  const { deliver } = await import('../../sim/index.ts');
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${o.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${o.tenantToken}`, 'content-type': 'application/json' } });
    const body = (await res.json()) as any;
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${body.message ?? ''}`);
    return body;
  };
  const balance = async () => (await api(`/api/v1/accounts/${o.account}/live`)).balance as string;
  const before = await balance();
  const order = await api(`/api/v1/accounts/${o.account}/topups`, { method: 'POST', body: JSON.stringify({ amount: '100.00', provider: 'wechat' }) });
  o.say(`\nonline top-up: tenant ${o.account} (balance ${before} CNY) orders 100.00 CNY with WeChat Pay -> order ${order.order}, QR code ${order.qr_code}`);
  const reply = await deliver(o.sim.pay(order.order));
  const paid = await api(`/api/v1/accounts/${o.account}/topups/${order.order}`);
  o.say(`  the simulated WeChat Pay collects and notifies (signed RSA-SHA256, resource AES-256-GCM): API answered ${reply.status}; order ${paid.state} at ${paid.paid_at}, ledger reference wechat:${o.sim.order(order.order).transaction}`);
  // The balance worker picks the payment up within seconds (balance every 3 s).
  let after = before;
  for (let i = 0; i < 20 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    after = await balance();
  }
  o.say(`  balance ${before} -> ${after} CNY without anyone in the office${after === before ? ' (the balance worker has not caught up yet)' : ''}`);
}
