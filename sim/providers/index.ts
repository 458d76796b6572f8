/** Payment-provider simulators (docs/topup.md): local servers with real keys, for tests and the demo. */
export { ProviderSim, deliver, deliverConcurrently, deliverUntilAcknowledged, tamperBody, tamperSignature } from './base.ts';
export type { SimNotification, SimOrder, SimOptions } from './base.ts';
export { WechatSim } from './wechat-sim.ts';
export type { WechatBillRow } from './wechat-sim.ts';
export { AlipaySim } from './alipay-sim.ts';
export type { AlipayBillRow } from './alipay-sim.ts';
export { StripeSim } from './stripe-sim.ts';
export type { StripeReportRow } from './stripe-sim.ts';
