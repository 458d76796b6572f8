import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { TopupProviderName } from '../../core/index.ts';

/**
 * Provider credentials (docs/topup.md, "Credentials"): from a secrets file whose path is
 * in SUBMETER_TOPUP_SECRETS_FILE (JSON, one object per provider) and/or from environment
 * variables SUBMETER_TOPUP_<PROVIDER>_<KEY> (which win). Never from the site file, never
 * logged: errors name the variable or key, never its value.
 */

const pem = z.string().min(1);
const wechat = z.strictObject({
  mchid: z.string().regex(/^\d{6,32}$/, 'must be the merchant id (digits)'),
  appid: z.string().min(1),
  /** Serial number of the merchant API certificate (sent in every request's Authorization). */
  merchant_serial: z.string().min(1),
  /** The merchant API private key (PEM, PKCS#8), signs our requests. */
  merchant_private_key: pem,
  /** The APIv3 key: 32 characters, decrypts notifications (AES-256-GCM). */
  apiv3_key: z.string().refine((k) => Buffer.byteLength(k) === 32, 'must be exactly 32 bytes'),
  /** WeChat Pay's platform certificate or public key (PEM): verifies notifications and answers. */
  platform_public_key: pem,
  /** Its serial (or public key id); when set, a notification naming another one is refused. */
  platform_serial: z.string().min(1).optional(),
  api_base: z.url().default('https://api.mch.weixin.qq.com'),
});
const alipay = z.strictObject({
  app_id: z.string().min(1),
  /** The application private key (PEM, or the bare base64 PKCS#8 Alipay's tool prints): signs requests. */
  app_private_key: pem,
  /** Alipay's public key (PEM or bare base64 SPKI): verifies notifications and answers. */
  alipay_public_key: pem,
  /** The merchant's Alipay user id (2088...); when set, notifications must name it. */
  seller_id: z.string().min(1).optional(),
  gateway: z.url().default('https://openapi.alipay.com/gateway.do'),
});
const stripe = z.strictObject({
  secret_key: z.string().regex(/^(sk|rk)_(test|live)_/, 'must be a Stripe secret or restricted key (sk_test_..., sk_live_...)'),
  /** The webhook endpoint's signing secret (whsec_...). */
  webhook_secret: z.string().regex(/^whsec_/, 'must be the endpoint signing secret (whsec_...)'),
  api_base: z.url().default('https://api.stripe.com'),
});

export const credentialSchemas = { wechat, alipay, stripe };
export type WechatCredentials = z.output<typeof wechat>;
export type AlipayCredentials = z.output<typeof alipay>;
export type StripeCredentials = z.output<typeof stripe>;
export interface TopupCredentials {
  wechat?: WechatCredentials;
  alipay?: AlipayCredentials;
  stripe?: StripeCredentials;
}

const KEYS: Record<TopupProviderName, readonly string[]> = {
  wechat: Object.keys(wechat.shape),
  alipay: Object.keys(alipay.shape),
  stripe: Object.keys(stripe.shape),
};

/**
 * The credentials of the providers a site uses. Throws one error listing every missing or
 * invalid key (by name) when a provider cannot be configured.
 */
export function loadTopupCredentials(providers: readonly TopupProviderName[], env: NodeJS.ProcessEnv = process.env): TopupCredentials {
  let file: Record<string, Record<string, unknown>> = {};
  const path = env.SUBMETER_TOPUP_SECRETS_FILE;
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`SUBMETER_TOPUP_SECRETS_FILE: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    try {
      file = JSON.parse(text) as typeof file;
    } catch {
      throw new Error(`SUBMETER_TOPUP_SECRETS_FILE: ${path} is not valid JSON`);
    }
  }
  const out: TopupCredentials = {};
  const problems: string[] = [];
  for (const p of providers) {
    const raw: Record<string, unknown> = { ...(file[p] ?? {}) };
    for (const k of KEYS[p]) {
      const v = env[`SUBMETER_TOPUP_${p.toUpperCase()}_${k.toUpperCase()}`];
      // PEM keys in one environment line carry "\n" as two characters.
      if (v !== undefined) raw[k] = v.replace(/\\n/g, '\n');
    }
    const r = credentialSchemas[p].safeParse(raw);
    if (!r.success) {
      for (const i of r.error.issues) {
        const key = i.code === 'unrecognized_keys' ? i.keys.join(', ') : String(i.path[0] ?? '');
        problems.push(`  ${p}.${key} (SUBMETER_TOPUP_${p.toUpperCase()}_${key.toUpperCase()} or the secrets file): ${i.code === 'invalid_type' ? 'missing' : i.message}`);
      }
      continue;
    }
    (out as Record<string, unknown>)[p] = r.data;
  }
  if (problems.length) throw new Error(`top-up credentials are incomplete:\n${problems.join('\n')}`);
  return out;
}

/** A private key from PEM, or from the bare base64 PKCS#8 that Alipay's key tool prints. */
export function privateKeyOf(text: string): KeyObject {
  const t = text.trim();
  if (t.includes('-----BEGIN')) return createPrivateKey(t);
  return createPrivateKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'pkcs8' });
}

/** A public key from a PEM key, a PEM X.509 certificate (WeChat's platform certificate) or bare base64 SPKI. */
export function publicKeyOf(text: string): KeyObject {
  const t = text.trim();
  if (t.includes('BEGIN CERTIFICATE')) return new X509Certificate(t).publicKey;
  if (t.includes('-----BEGIN')) return createPublicKey(t);
  return createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' });
}
