import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTopupCredentials } from './credentials.ts';

describe('top-up credentials', () => {
  it('come from a secrets file and the environment (which wins, with \\n in PEM keys)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'topup-secrets-'));
    try {
      const file = join(dir, 'secrets.json');
      writeFileSync(file, JSON.stringify({ stripe: { secret_key: 'sk_test_fromfile', webhook_secret: 'whsec_fromfile' } }));
      const c = loadTopupCredentials(['stripe'], { SUBMETER_TOPUP_SECRETS_FILE: file, SUBMETER_TOPUP_STRIPE_WEBHOOK_SECRET: 'whsec_fromenv' });
      expect(c.stripe).toEqual({ secret_key: 'sk_test_fromfile', webhook_secret: 'whsec_fromenv', api_base: 'https://api.stripe.com' });
      const a = loadTopupCredentials(['alipay'], { SUBMETER_TOPUP_ALIPAY_APP_ID: '2021', SUBMETER_TOPUP_ALIPAY_APP_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\\nAAA\\n-----END PRIVATE KEY-----', SUBMETER_TOPUP_ALIPAY_ALIPAY_PUBLIC_KEY: 'BBB' });
      expect(a.alipay?.app_private_key).toBe('-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('missing or malformed keys are named, their values never printed', () => {
    let msg = '';
    try {
      loadTopupCredentials(['wechat', 'stripe'], { SUBMETER_TOPUP_WECHAT_APIV3_KEY: 'short-secret-value', SUBMETER_TOPUP_STRIPE_SECRET_KEY: 'sk_test_x', SUBMETER_TOPUP_STRIPE_WEBHOOK_SECRET: 'not-a-whsec-secret' });
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toMatch(/wechat\.mchid \(SUBMETER_TOPUP_WECHAT_MCHID or the secrets file\): missing/);
    expect(msg).toMatch(/wechat\.apiv3_key .*must be exactly 32 bytes/);
    expect(msg).toMatch(/stripe\.webhook_secret .*whsec_/);
    expect(msg).not.toContain('short-secret-value');
    expect(msg).not.toContain('not-a-whsec-secret');
  });
});
