import { createCipheriv, createHash, createSign, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimNotification, SimOptions } from './base.ts';
import { ProviderSim, sendJson } from './base.ts';

/**
 * WeChat Pay API v3 simulator: Native orders, query, close, refund, trade bill. It checks
 * the merchant's request signatures (WECHATPAY2-SHA256-RSA2048 with the merchant key it
 * generated), signs every answer and notification with its own platform key, and encrypts
 * notification resources with AES-256-GCM under the APIv3 key, as WeChat does.
 */
export class WechatSim extends ProviderSim {
  readonly mchid = '1900000109';
  readonly appid = 'wxd678efh567hg6787';
  readonly merchantSerial = randomBytes(20).toString('hex').toUpperCase();
  readonly platformSerial = `PUB_KEY_ID_${randomBytes(12).toString('hex').toUpperCase()}`;
  readonly apiv3Key = randomBytes(24).toString('base64').slice(0, 32);
  private readonly merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
  private readonly platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
  /** Refunds answer PROCESSING (then a REFUND.SUCCESS notification) instead of SUCCESS. */
  refundsProcessing = false;
  private readonly bills = new Map<string, Buffer>();
  /** Lines a test adds to, or edits in, a day's statement. */
  statementEdit?: (rows: WechatBillRow[]) => WechatBillRow[];

  constructor(opts: SimOptions = {}) {
    super(opts);
  }

  /** The merchant's credentials for lib/topup (what a real merchant gets from the WeChat Pay portal). */
  get credentials() {
    return {
      mchid: this.mchid,
      appid: this.appid,
      merchant_serial: this.merchantSerial,
      merchant_private_key: this.merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      apiv3_key: this.apiv3Key,
      platform_public_key: this.platform.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      platform_serial: this.platformSerial,
      api_base: this.url,
    };
  }

  protected handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname === '/v3/billdownload/file') {
      const bill = this.bills.get(url.searchParams.get('token') ?? '');
      if (!bill) return sendJson(res, 404, { code: 'NOT_FOUND', message: 'no such bill token' });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(bill);
      return;
    }
    if (!this.checkAuth(req, url.pathname + url.search, body)) return this.reply(res, 401, { code: 'SIGN_ERROR', message: '签名错误' });
    const json = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, any>) : {};
    let m: RegExpExecArray | null;
    if (req.method === 'POST' && url.pathname === '/v3/pay/transactions/native') {
      if (json.mchid !== this.mchid || json.appid !== this.appid) return this.reply(res, 400, { code: 'PARAM_ERROR', message: 'mchid/appid' });
      if (!this.orders.has(json.out_trade_no)) {
        this.orders.set(json.out_trade_no, { id: json.out_trade_no, fen: json.amount.total, currency: json.amount.currency ?? 'CNY', notifyUrl: json.notify_url, description: json.description, expiresAt: Date.parse(json.time_expire), status: 'pending', refunds: [] });
      }
      return this.reply(res, 200, { code_url: `weixin://wxpay/bizpayurl?pr=${randomBytes(6).toString('base64url')}` });
    }
    if (req.method === 'GET' && (m = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(url.pathname))) {
      const o = this.orders.get(decodeURIComponent(m[1]));
      if (!o) return this.reply(res, 404, { code: 'ORDER_NOT_EXIST', message: '订单不存在' });
      return this.reply(res, 200, this.transaction(o));
    }
    if (req.method === 'POST' && (m = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)\/close$/.exec(url.pathname))) {
      const o = this.orders.get(decodeURIComponent(m[1]));
      if (o && o.status === 'pending') o.status = 'closed';
      return this.reply(res, 204, undefined);
    }
    if (req.method === 'POST' && url.pathname === '/v3/refund/domestic/refunds') {
      const o = this.orders.get(json.out_trade_no);
      if (!o || o.status !== 'paid') return this.reply(res, 400, { code: 'RESOURCE_NOT_EXISTS', message: '订单不存在或未支付' });
      const done = o.refunds.reduce((s, r) => s + r.fen, 0);
      if (json.amount.refund + done > (o.paidFen ?? o.fen)) return this.reply(res, 403, { code: 'NOT_ENOUGH', message: '退款金额超过订单金额' });
      let r = o.refunds.find((x) => x.refundNo === json.out_refund_no);
      if (!r) o.refunds.push((r = { refundNo: json.out_refund_no, refundId: this.id('50', 30), fen: json.amount.refund, at: this.now() }));
      return this.reply(res, 200, {
        refund_id: r.refundId,
        out_refund_no: r.refundNo,
        transaction_id: o.transaction,
        out_trade_no: o.id,
        status: this.refundsProcessing ? 'PROCESSING' : 'SUCCESS',
        create_time: rfc3339(r.at),
        ...(this.refundsProcessing ? {} : { success_time: rfc3339(r.at) }),
        amount: { total: o.paidFen, refund: r.fen, payer_total: o.paidFen, payer_refund: r.fen, currency: o.currency },
      });
    }
    if (req.method === 'GET' && url.pathname === '/v3/bill/tradebill') {
      const date = url.searchParams.get('bill_date') ?? '';
      const file = this.statementFile(date);
      const token = randomBytes(12).toString('hex');
      this.bills.set(token, file);
      return this.reply(res, 200, { hash_type: 'SHA1', hash_value: createHash('sha1').update(file).digest('hex'), download_url: `${this.url}/v3/billdownload/file?token=${token}` });
    }
    this.reply(res, 404, { code: 'NOT_FOUND', message: `${req.method} ${url.pathname}` });
  }

  pay(orderId: string, opts: { fen?: number; at?: number } = {}): SimNotification {
    const o = this.order(orderId);
    if (o.status !== 'paid') {
      o.status = 'paid';
      o.transaction = this.id('42000', 28);
      o.paidFen = opts.fen ?? o.fen;
      o.paidAt = Math.floor((opts.at ?? this.now()) / 1000) * 1000;
    }
    return this.notification('TRANSACTION.SUCCESS', 'transaction', '支付成功', this.transaction(o), o.notifyUrl);
  }

  /** The REFUND.SUCCESS notification of a refund (after a PROCESSING answer). */
  refundNotification(orderId: string, refundNo: string, notifyUrl: string): SimNotification {
    const o = this.order(orderId);
    const r = o.refunds.find((x) => x.refundNo === refundNo);
    if (!r) throw new Error(`no refund ${refundNo}`);
    return this.notification('REFUND.SUCCESS', 'refund', '退款成功', { mchid: this.mchid, out_trade_no: o.id, transaction_id: o.transaction, out_refund_no: r.refundNo, refund_id: r.refundId, refund_status: 'SUCCESS', success_time: rfc3339(r.at), amount: { total: o.paidFen, refund: r.fen, payer_total: o.paidFen, payer_refund: r.fen } }, notifyUrl);
  }

  /** The trade bill (bill_type ALL) of a China-time day: header, backtick-prefixed detail lines, summary. */
  statementFile(date: string): Buffer {
    let rows: WechatBillRow[] = [];
    for (const o of this.orders.values()) {
      if (o.status === 'paid' && chinaDate(o.paidAt!) === date) rows.push({ time: o.paidAt!, transaction: o.transaction!, orderId: o.id, state: 'SUCCESS', fen: o.paidFen!, refundNo: '', refundFen: 0 });
      for (const r of o.refunds) if (chinaDate(r.at) === date) rows.push({ time: r.at, transaction: o.transaction!, orderId: o.id, state: 'REFUND', fen: o.paidFen!, refundNo: r.refundNo, refundFen: r.fen, refundId: r.refundId });
    }
    if (this.statementEdit) rows = this.statementEdit(rows);
    const head = '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注';
    const y = (fen: number) => (fen / 100).toFixed(2);
    const lines = rows
      .sort((a, b) => a.time - b.time)
      .map((r) =>
        [chinaTime(r.time), this.appid, this.mchid, '0', '', r.transaction, r.orderId, 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', 'NATIVE', r.state, 'OTHERS', 'CNY', y(r.state === 'SUCCESS' ? r.fen : 0), '0.00', r.refundId ?? '0', r.refundNo || '0', y(r.refundFen), '0.00', r.state === 'REFUND' ? 'ORIGINAL' : '', r.state === 'REFUND' ? 'SUCCESS' : '', '电费充值', '', '0.00000', '0.60%', y(r.fen), y(r.refundFen), '']
          .map((f) => `\`${f}`)
          .join(','),
      );
    const paid = rows.filter((r) => r.state === 'SUCCESS');
    const summary = ['总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额', [paid.length, y(paid.reduce((s, r) => s + r.fen, 0)), y(rows.reduce((s, r) => s + r.refundFen, 0)), '0.00', '0.00000', y(paid.reduce((s, r) => s + r.fen, 0)), y(rows.reduce((s, r) => s + r.refundFen, 0))].map((f) => `\`${f}`).join(',')];
    return Buffer.from(`${[head, ...lines, ...summary].join('\r\n')}\r\n`, 'utf8');
  }

  private transaction(o: (typeof this.orders extends Map<string, infer V> ? V : never)) {
    const paid = o.status === 'paid';
    return {
      appid: this.appid,
      mchid: this.mchid,
      out_trade_no: o.id,
      ...(paid ? { transaction_id: o.transaction, success_time: rfc3339(o.paidAt!) } : {}),
      trade_type: 'NATIVE',
      trade_state: paid ? (o.refunds.length ? 'REFUND' : 'SUCCESS') : o.status === 'closed' ? 'CLOSED' : 'NOTPAY',
      trade_state_desc: paid ? '支付成功' : '未支付',
      bank_type: 'OTHERS',
      attach: '',
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
      amount: { total: paid ? o.paidFen : o.fen, payer_total: paid ? o.paidFen : o.fen, currency: o.currency, payer_currency: o.currency },
    };
  }

  private notification(eventType: string, originalType: string, summary: string, resource: object, url: string): SimNotification {
    const nonce = randomBytes(9).toString('base64url').slice(0, 12);
    const aad = originalType;
    const c = createCipheriv('aes-256-gcm', Buffer.from(this.apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
    c.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([c.update(JSON.stringify(resource), 'utf8'), c.final(), c.getAuthTag()]);
    const body = Buffer.from(
      JSON.stringify({ id: `EV-${this.id('', 18)}`, create_time: rfc3339(this.now()), resource_type: 'encrypt-resource', event_type: eventType, summary, resource: { original_type: originalType, algorithm: 'AEAD_AES_256_GCM', ciphertext: ct.toString('base64'), associated_data: aad, nonce } }),
      'utf8',
    );
    return { url, headers: { 'content-type': 'application/json', ...this.signHeaders(body) }, body };
  }

  private signHeaders(body: Buffer): Record<string, string> {
    const ts = String(Math.floor(this.now() / 1000));
    const nonce = randomBytes(16).toString('hex');
    const sig = createSign('RSA-SHA256').update(Buffer.concat([Buffer.from(`${ts}\n${nonce}\n`), body, Buffer.from('\n')])).sign(this.platform.privateKey, 'base64');
    return { 'wechatpay-timestamp': ts, 'wechatpay-nonce': nonce, 'wechatpay-signature': sig, 'wechatpay-serial': this.platformSerial };
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    const buf = Buffer.from(body === undefined ? '' : JSON.stringify(body), 'utf8');
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...this.signHeaders(buf) });
    res.end(buf);
  }

  /** The merchant's Authorization header, verified with the merchant public key. */
  private checkAuth(req: IncomingMessage, pathAndQuery: string, body: Buffer): boolean {
    const m = /^WECHATPAY2-SHA256-RSA2048 (.*)$/.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const f: Record<string, string> = {};
    for (const kv of m[1].matchAll(/(\w+)="([^"]*)"/g)) f[kv[1]] = kv[2];
    if (f.mchid !== this.mchid || f.serial_no !== this.merchantSerial) return false;
    if (Math.abs(Date.now() / 1000 - Number(f.timestamp)) > 300) return false;
    return createVerify('RSA-SHA256').update(`${req.method}\n${pathAndQuery}\n${f.timestamp}\n${f.nonce_str}\n${body.toString('utf8')}\n`).verify(this.merchant.publicKey as KeyObject, f.signature, 'base64');
  }
}

export interface WechatBillRow {
  time: number;
  transaction: string;
  orderId: string;
  state: 'SUCCESS' | 'REFUND';
  /** Order amount, fen. */
  fen: number;
  refundNo: string;
  refundId?: string;
  refundFen: number;
}

function rfc3339(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000 + 8 * 3_600_000).toISOString().slice(0, 19)}+08:00`;
}
function chinaTime(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
}
export function chinaDate(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 10);
}
