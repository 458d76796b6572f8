/** Payment-provider adapters for online top-up (docs/topup.md): the API and the workers import from here. */
import type { TopupProviderName } from '../../core/index.ts';
import { Alipay } from './alipay.ts';
import { loadTopupCredentials } from './credentials.ts';
import type { TopupCredentials } from './credentials.ts';
import type { TopupProvider } from './provider.ts';
import { StripeCheckout } from './stripe.ts';
import { WechatPay } from './wechat.ts';

export * from './provider.ts';
export { loadTopupCredentials, privateKeyOf, publicKeyOf, credentialSchemas } from './credentials.ts';
export type { TopupCredentials, WechatCredentials, AlipayCredentials, StripeCredentials } from './credentials.ts';
export { WechatPay } from './wechat.ts';
export { Alipay, signContent as alipaySignContent } from './alipay.ts';
export { StripeCheckout } from './stripe.ts';

export type TopupProviders = ReadonlyMap<TopupProviderName, TopupProvider>;

/** The adapters of a site's providers, from credentials (loaded from the environment when not given). */
export function createTopupProviders(site: { readonly id: string; readonly topup?: { readonly providers: readonly TopupProviderName[] } }, credentials?: TopupCredentials): TopupProviders {
  const names = site.topup?.providers ?? [];
  const c = credentials ?? loadTopupCredentials(names);
  const out = new Map<TopupProviderName, TopupProvider>();
  for (const n of names) {
    if (n === 'wechat' && c.wechat) out.set(n, new WechatPay(c.wechat));
    else if (n === 'alipay' && c.alipay) out.set(n, new Alipay(c.alipay));
    else if (n === 'stripe' && c.stripe) out.set(n, new StripeCheckout(c.stripe, site.id));
    else throw new Error(`top-up provider ${n} is in the site file but has no credentials (SUBMETER_TOPUP_${n.toUpperCase()}_* or SUBMETER_TOPUP_SECRETS_FILE)`);
  }
  return out;
}
