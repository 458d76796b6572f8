import { createDecipheriv, createHash, createSign, createVerify, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { splitCsvLine } from '../../core/index.ts';
import type { StatementRow } from '../../core/index.ts';
import type { WechatCredentials } from './credentials.ts';
import { privateKeyOf, publicKeyOf } from './credentials.ts';
import type { CreatedProviderOrder, NewProviderOrder, ProviderOrderRef, ProviderOrderStatus, ProviderRefundRequest, ProviderRefundResult, RawNotification, StatementDay, TopupProvider, VerifiedNotification } from './provider.ts';
import { header, httpCall, parseChinaTime, ProviderRejectedError, ProviderUnavailableError, SignatureError, yuanToFen } from './provider.ts';

/**
 * WeChat Pay API v3, Native payment (a QR code the payer scans). Formats per the public
 * docs cited in docs/topup.md:
 * - requests: `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,signature=..,timestamp=..,serial_no=..`,
 *   signature = RSA-SHA256 (PKCS#1 v1.5) of `METHOD\nURL\ntimestamp\nnonce\nbody\n` with the merchant key;
 * - answers and notifications: `Wechatpay-Signature` = RSA-SHA256 of `timestamp\nnonce\nbody\n`
 *   verified with the platform certificate/public key (`Wechatpay-Serial` names it);
 * - notification `resource`: AEAD_AES_256_GCM with the APIv3 key, resource.nonce (12 bytes)
 *   and resource.associated_data; the base64 ciphertext ends with the 16-byte tag.
 */

/** WeChat's own advice: refuse a signed message whose timestamp is more than 5 minutes off (replay). */
const TOLERANCE_S = 300;

export class WechatPay implements TopupProvider {
  readonly name = 'wechat' as const;
  private readonly merchantKey: KeyObject;
  private readonly platformKey: KeyObject;
  constructor(private readonly c: WechatCredentials) {
    this.merchantKey = privateKeyOf(c.merchant_private_key);
    this.platformKey = publicKeyOf(c.platform_public_key);
  }

  async createOrder(o: NewProviderOrder): Promise<CreatedProviderOrder> {
    const r = await this.call('POST', '/v3/pay/transactions/native', {
      appid: this.c.appid,
      mchid: this.c.mchid,
      description: o.description.slice(0, 127),
      out_trade_no: o.orderId,
      time_expire: rfc3339China(o.expiresAt),
      notify_url: o.notifyUrl,
      amount: { total: o.fen, currency: o.currency },
    });
    const codeUrl = (r.json as { code_url?: unknown }).code_url;
    if (typeof codeUrl !== 'string') throw new ProviderUnavailableError('wechat: native order answer has no code_url');
    return { qrCode: codeUrl };
  }

  verifyNotification(raw: RawNotification, nowMs: number): VerifiedNotification {
    this.verifySigned(raw.headers, raw.body, nowMs, true);
    // Only now is the body read (docs/topup.md: verify before parsing).
    let n: { event_type?: string; resource?: { algorithm?: string; ciphertext?: string; nonce?: string; associated_data?: string; original_type?: string } };
    try {
      n = JSON.parse(raw.body.toString('utf8'));
    } catch {
      throw new SignatureError('wechat: the signed body is not JSON');
    }
    const res = n.resource;
    if (!res || res.algorithm !== 'AEAD_AES_256_GCM' || typeof res.ciphertext !== 'string' || typeof res.nonce !== 'string') throw new SignatureError('wechat: notification without an AEAD_AES_256_GCM resource');
    const plain = this.decrypt(res.ciphertext, res.nonce, res.associated_data ?? '');
    const type = n.event_type ?? '';
    if (type === 'TRANSACTION.SUCCESS') {
      const t = plain as WechatTransaction;
      if (t.trade_state !== 'SUCCESS') return { kind: 'ignored', provider: 'wechat', reason: `transaction ${t.out_trade_no} is ${t.trade_state}` };
      return { kind: 'payment', provider: 'wechat', ...this.paymentFacts(t) };
    }
    if (type === 'REFUND.SUCCESS') {
      const r = plain as { mchid?: string; out_trade_no?: string; out_refund_no?: string; refund_id?: string; success_time?: string; amount?: { refund?: number } };
      return { kind: 'refund', provider: 'wechat', orderId: String(r.out_trade_no), refundNo: String(r.out_refund_no), refundId: String(r.refund_id), fen: Number(r.amount?.refund), time: Date.parse(String(r.success_time)), merchantOk: r.mchid === this.c.mchid };
    }
    return { kind: 'ignored', provider: 'wechat', reason: `event ${type}` };
  }

  notificationReply(ok: boolean, why = 'failed') {
    // Success: 200/204 without a body; failure: 4XX/5XX with {code: FAIL, message} (WeChat retries).
    return ok ? { status: 204, type: 'application/json', body: '' } : { status: why === 'signature' ? 401 : 500, type: 'application/json', body: JSON.stringify({ code: 'FAIL', message: why === 'signature' ? '签名验证失败 signature invalid' : '处理失败 try again' }) };
  }

  async queryOrder(o: ProviderOrderRef): Promise<ProviderOrderStatus> {
    const r = await this.call('GET', `/v3/pay/transactions/out-trade-no/${encodeURIComponent(o.orderId)}?mchid=${encodeURIComponent(this.c.mchid)}`, undefined, true);
    if (r.status === 404) return { status: 'unknown' };
    const t = r.json as WechatTransaction;
    switch (t.trade_state) {
      case 'SUCCESS':
      case 'REFUND':
        return { status: 'paid', ...this.paymentFacts(t) };
      case 'NOTPAY':
      case 'USERPAYING':
        return { status: 'pending' };
      default:
        return { status: 'closed' };
    }
  }

  async closeOrder(o: ProviderOrderRef): Promise<void> {
    await this.call('POST', `/v3/pay/transactions/out-trade-no/${encodeURIComponent(o.orderId)}/close`, { mchid: this.c.mchid });
  }

  async refund(r: ProviderRefundRequest): Promise<ProviderRefundResult> {
    const res = await this.call('POST', '/v3/refund/domestic/refunds', {
      out_trade_no: r.orderId,
      out_refund_no: r.refundNo,
      reason: r.reason.slice(0, 80),
      notify_url: r.notifyUrl,
      amount: { refund: r.fen, total: r.totalFen, currency: r.currency },
    });
    const b = res.json as { refund_id?: string; status?: string; success_time?: string; create_time?: string };
    const status = b.status === 'SUCCESS' ? 'succeeded' : b.status === 'PROCESSING' ? 'pending' : 'failed';
    return { status, refundId: String(b.refund_id ?? ''), time: Date.parse(String(b.success_time ?? b.create_time ?? '')) || 0, detail: b.status };
  }

  async statement(day: StatementDay): Promise<StatementRow[]> {
    const r = await this.call('GET', `/v3/bill/tradebill?bill_date=${day.date}&bill_type=ALL`);
    const { download_url: url, hash_value: hash } = r.json as { download_url?: string; hash_value?: string };
    if (!url) throw new ProviderUnavailableError('wechat: trade bill answer has no download_url');
    // The download itself is signed by us but its answer carries no signature: the SHA1 of
    // the bill, from the signed answer above, protects it instead.
    const u = new URL(url);
    const file = await httpCall(url, { method: 'GET', headers: { Authorization: this.authorization('GET', u.pathname + u.search, ''), Accept: 'application/json' } });
    if (file.status !== 200) throw new ProviderRejectedError(`wechat: bill download answered ${file.status}`, 'bill_download');
    if (hash && createHash('sha1').update(file.body).digest('hex') !== hash.toLowerCase()) throw new ProviderUnavailableError('wechat: downloaded bill does not match its SHA1');
    return this.parseStatement(file.body);
  }

  /**
   * The trade bill (bill_type ALL): a header line, detail lines whose every field starts
   * with a backtick (so spreadsheets keep long numbers), then a summary header (总交易单数...)
   * and its line. Columns are found by name; amounts are yuan.
   */
  parseStatement(file: Buffer): StatementRow[] {
    const lines = file.toString('utf8').replace(/^\uFEFF/, '').split(/\r?\n/);
    const head = splitCsvLine(lines[0] ?? '').map((h) => h.trim());
    const col = (name: string) => head.indexOf(name);
    const need = ['交易时间', '商户号', '微信订单号', '商户订单号', '交易状态', '货币种类', '订单金额', '商户退款单号', '申请退款金额'];
    const missing = need.filter((n) => col(n) < 0);
    if (missing.length) throw new ProviderRejectedError(`wechat bill: missing column(s) ${missing.join(', ')}`, 'bill_format');
    const rows: StatementRow[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      if (!line.trim()) continue;
      if (line.startsWith('总交易单数')) break;
      const f = splitCsvLine(line).map((v) => v.replace(/^`/, '').trim());
      const get = (name: string) => f[col(name)] ?? '';
      if (get('商户号') !== this.c.mchid) throw new ProviderRejectedError(`wechat bill line ${i + 1}: merchant ${get('商户号')} is not ours`, 'bill_merchant');
      const state = get('交易状态');
      const base = { orderId: get('商户订单号'), transaction: get('微信订单号'), currency: get('货币种类') || 'CNY', time: parseChinaTime(get('交易时间')) };
      if (state === 'SUCCESS') rows.push({ kind: 'payment', ...base, fen: yuanToFen(get('订单金额')) });
      else if (state === 'REFUND') rows.push({ kind: 'refund', ...base, refundNo: get('商户退款单号'), fen: Math.abs(yuanToFen(get('申请退款金额'))) });
      // REVOKED and other states moved no money.
    }
    return rows;
  }

  // --- wire ----------------------------------------------------------------------------

  private paymentFacts(t: WechatTransaction) {
    return {
      orderId: String(t.out_trade_no),
      transaction: String(t.transaction_id),
      fen: Number(t.amount?.total),
      currency: String(t.amount?.currency ?? 'CNY'),
      paidAt: Date.parse(String(t.success_time)),
      merchantOk: t.mchid === this.c.mchid && t.appid === this.c.appid,
      merchant: `mchid ${t.mchid} appid ${t.appid}`,
    };
  }

  private authorization(method: string, pathAndQuery: string, body: string): string {
    const ts = Math.floor(Date.now() / 1000);
    const nonce = randomBytes(16).toString('hex').toUpperCase();
    const signature = createSign('RSA-SHA256').update(`${method}\n${pathAndQuery}\n${ts}\n${nonce}\n${body}\n`).sign(this.merchantKey, 'base64');
    return `WECHATPAY2-SHA256-RSA2048 mchid="${this.c.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${ts}",serial_no="${this.c.merchant_serial}"`;
  }

  private verifySigned(h: RawNotification['headers'], body: Buffer, nowMs: number, checkTime: boolean): void {
    const ts = header(h, 'wechatpay-timestamp');
    const nonce = header(h, 'wechatpay-nonce');
    const sig = header(h, 'wechatpay-signature');
    const serial = header(h, 'wechatpay-serial');
    if (!ts || !nonce || !sig || !/^\d{1,12}$/.test(ts)) throw new SignatureError('wechat: Wechatpay-Timestamp, -Nonce and -Signature are required');
    if (this.c.platform_serial && serial !== this.c.platform_serial) throw new SignatureError('wechat: signed with an unknown platform certificate (Wechatpay-Serial)');
    if (checkTime && Math.abs(nowMs / 1000 - Number(ts)) > TOLERANCE_S) throw new SignatureError('wechat: Wechatpay-Timestamp is more than 5 minutes off');
    const ok = createVerify('RSA-SHA256').update(Buffer.concat([Buffer.from(`${ts}\n${nonce}\n`), body, Buffer.from('\n')])).verify(this.platformKey, sig, 'base64');
    if (!ok) throw new SignatureError('wechat: Wechatpay-Signature does not verify');
  }

  private decrypt(ciphertext: string, nonce: string, aad: string): unknown {
    try {
      const data = Buffer.from(ciphertext, 'base64');
      if (data.length <= 16) throw new Error('short');
      const d = createDecipheriv('aes-256-gcm', Buffer.from(this.c.apiv3_key, 'utf8'), Buffer.from(nonce, 'utf8'));
      d.setAuthTag(data.subarray(data.length - 16));
      d.setAAD(Buffer.from(aad, 'utf8'));
      const plain = Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
      return JSON.parse(plain.toString('utf8'));
    } catch {
      // A resource that does not decrypt under our APIv3 key is not from WeChat for us.
      throw new SignatureError('wechat: the resource does not decrypt with the APIv3 key (AES-256-GCM)');
    }
  }

  private async call(method: 'GET' | 'POST', pathAndQuery: string, payload?: object, allow404 = false): Promise<{ status: number; json: unknown }> {
    const body = payload ? JSON.stringify(payload) : '';
    const res = await httpCall(this.c.api_base.replace(/\/+$/, '') + pathAndQuery, {
      method,
      headers: { Authorization: this.authorization(method, pathAndQuery, body), Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json' } : {}) },
      ...(payload ? { body } : {}),
    });
    const h: Record<string, string> = {};
    res.headers.forEach((v, k) => (h[k] = v));
    // WeChat signs its answers (2xx and errors); an answer that does not verify is not trusted.
    try {
      this.verifySigned(h, res.body, Date.now(), false);
    } catch (err) {
      throw new ProviderUnavailableError(`wechat answer to ${method} ${pathAndQuery.split('?')[0]}: ${(err as Error).message}`);
    }
    const json = res.body.length ? (JSON.parse(res.body.toString('utf8')) as unknown) : {};
    if (res.status >= 400 && !(allow404 && res.status === 404)) {
      const e = json as { code?: string; message?: string };
      throw new ProviderRejectedError(`wechat ${method} ${pathAndQuery.split('?')[0]}: ${res.status} ${e.code ?? ''} ${e.message ?? ''}`.trim(), e.code ?? String(res.status));
    }
    return { status: res.status, json };
  }
}

interface WechatTransaction {
  appid?: string;
  mchid?: string;
  out_trade_no?: string;
  transaction_id?: string;
  trade_state?: string;
  success_time?: string;
  amount?: { total?: number; currency?: string };
}

/** RFC 3339 at +08:00, as WeChat's time_expire expects. */
function rfc3339China(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000 + 8 * 3_600_000).toISOString().slice(0, 19)}+08:00`;
}
