import { createSign, createVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { unzipSync } from 'fflate';
import { splitCsvLine } from '../../core/index.ts';
import type { StatementRow } from '../../core/index.ts';
import type { AlipayCredentials } from './credentials.ts';
import { privateKeyOf, publicKeyOf } from './credentials.ts';
import type { CreatedProviderOrder, NewProviderOrder, ProviderOrderRef, ProviderOrderStatus, ProviderRefundRequest, ProviderRefundResult, RawNotification, StatementDay, TopupProvider, VerifiedNotification } from './provider.ts';
import { fenToYuan, formatChinaTime, httpCall, parseChinaTime, ProviderRejectedError, ProviderUnavailableError, SignatureError, yuanToFen } from './provider.ts';

/**
 * Alipay open platform, face-to-face "precreate" (a QR code the payer scans). Formats per
 * the public docs cited in docs/topup.md:
 * - RSA2 = SHA256withRSA over the parameters sorted by name (byte order), empty values and
 *   `sign` left out (and, for notifications, `sign_type` too), joined as `k=v&k=v` with raw
 *   (decoded) values; base64 signature;
 * - gateway answers: JSON `{"<method>_response": {...}, "sign": "..."}`, the signature is over
 *   the exact text of the `_response` object;
 * - notifications: form-encoded POST, answered with the text `success` (else Alipay retries,
 *   8 times over 25 h);
 * - the trade bill: a zip of GBK CSV files; the detail file has `#` comment lines, a header
 *   with 支付宝交易号, 商户订单号, 业务类型 (交易 / 退款), 完成时间, 订单金额（元）, 退款批次号/请求号.
 */
export class Alipay implements TopupProvider {
  readonly name = 'alipay' as const;
  private readonly appKey: KeyObject;
  private readonly alipayKey: KeyObject;
  constructor(private readonly c: AlipayCredentials) {
    this.appKey = privateKeyOf(c.app_private_key);
    this.alipayKey = publicKeyOf(c.alipay_public_key);
  }

  async createOrder(o: NewProviderOrder): Promise<CreatedProviderOrder> {
    const r = await this.call('alipay.trade.precreate', { out_trade_no: o.orderId, total_amount: fenToYuan(o.fen), subject: o.description.slice(0, 256), time_expire: formatChinaTime(o.expiresAt) }, o.notifyUrl);
    if (r.code !== '10000' || typeof r.qr_code !== 'string') throw rejected('precreate', r);
    return { qrCode: r.qr_code };
  }

  verifyNotification(raw: RawNotification, _nowMs: number): VerifiedNotification {
    const params = new URLSearchParams(raw.body.toString('utf8'));
    const sign = params.get('sign');
    if (!sign) throw new SignatureError('alipay: notification has no sign');
    if ((params.get('sign_type') ?? 'RSA2') !== 'RSA2') throw new SignatureError('alipay: only RSA2 notifications are accepted');
    const content = signContent(params, ['sign', 'sign_type']);
    if (!createVerify('RSA-SHA256').update(content, 'utf8').verify(this.alipayKey, sign, 'base64')) throw new SignatureError('alipay: sign does not verify');
    // Verified: now read it.
    const get = (k: string) => params.get(k) ?? '';
    const merchantOk = get('app_id') === this.c.app_id && (!this.c.seller_id || get('seller_id') === this.c.seller_id);
    // A (partial) refund also triggers trade_status_sync, with refund_fee / gmt_refund: the
    // refund itself is recorded from the refund call's answer, so this one is only noted.
    if (get('gmt_refund') || (get('refund_fee') && yuanToFen(get('refund_fee')) > 0)) return { kind: 'ignored', provider: 'alipay', reason: `refund notice for ${get('out_trade_no')}` };
    const status = get('trade_status');
    if (status !== 'TRADE_SUCCESS' && status !== 'TRADE_FINISHED') return { kind: 'ignored', provider: 'alipay', reason: `trade ${get('out_trade_no')} is ${status}` };
    return {
      kind: 'payment',
      provider: 'alipay',
      orderId: get('out_trade_no'),
      transaction: get('trade_no'),
      fen: yuanToFen(get('total_amount')),
      // Face-to-face payments settle in CNY; the notification carries no currency field.
      currency: 'CNY',
      paidAt: parseChinaTime(get('gmt_payment')),
      merchantOk,
      merchant: `app_id ${get('app_id')} seller_id ${get('seller_id')}`,
    };
  }

  notificationReply(ok: boolean, why = 'failed') {
    return ok ? { status: 200, type: 'text/plain', body: 'success' } : { status: why === 'signature' ? 401 : 500, type: 'text/plain', body: 'failure' };
  }

  async queryOrder(o: ProviderOrderRef): Promise<ProviderOrderStatus> {
    const r = await this.call('alipay.trade.query', { out_trade_no: o.orderId });
    if (r.code === '40004' && r.sub_code === 'ACQ.TRADE_NOT_EXIST') return { status: 'unknown' };
    if (r.code !== '10000') throw rejected('query', r);
    const s = String(r.trade_status);
    if (s === 'WAIT_BUYER_PAY') return { status: 'pending' };
    if (s !== 'TRADE_SUCCESS' && s !== 'TRADE_FINISHED') return { status: 'closed' };
    return {
      status: 'paid',
      orderId: String(r.out_trade_no),
      transaction: String(r.trade_no),
      fen: yuanToFen(String(r.total_amount)),
      currency: 'CNY',
      paidAt: parseChinaTime(String(r.send_pay_date)),
      merchantOk: true,
      merchant: `app_id ${this.c.app_id}`,
    };
  }

  async closeOrder(o: ProviderOrderRef): Promise<void> {
    const r = await this.call('alipay.trade.close', { out_trade_no: o.orderId });
    if (r.code !== '10000' && r.sub_code !== 'ACQ.TRADE_NOT_EXIST') throw rejected('close', r);
  }

  async refund(q: ProviderRefundRequest): Promise<ProviderRefundResult> {
    const r = await this.call('alipay.trade.refund', { out_trade_no: q.orderId, refund_amount: fenToYuan(q.fen), out_request_no: q.refundNo, refund_reason: q.reason.slice(0, 256) });
    if (r.code !== '10000') return { status: 'failed', refundId: q.refundNo, time: 0, detail: `${String(r.sub_code ?? r.code)} ${String(r.sub_msg ?? r.msg ?? '')}`.trim() };
    return { status: 'succeeded', refundId: q.refundNo, time: r.gmt_refund_pay ? parseChinaTime(String(r.gmt_refund_pay)) : Date.now() };
  }

  async statement(day: StatementDay): Promise<StatementRow[]> {
    const r = await this.call('alipay.data.dataservice.bill.downloadurl.query', { bill_type: 'trade', bill_date: day.date });
    if (r.code !== '10000' || typeof r.bill_download_url !== 'string') throw rejected('bill download url', r);
    const file = await httpCall(r.bill_download_url, { method: 'GET' });
    if (file.status !== 200) throw new ProviderRejectedError(`alipay: bill download answered ${file.status}`, 'bill_download');
    return this.parseStatement(file.body);
  }

  /** The zip (or its detail CSV alone), GBK. */
  parseStatement(file: Buffer): StatementRow[] {
    let csv: Uint8Array = file;
    if (file[0] === 0x50 && file[1] === 0x4b) {
      const entries = unzipSync(new Uint8Array(file));
      const name = Object.keys(entries).find((n) => n.includes('业务明细') && !n.includes('汇总'));
      if (!name) throw new ProviderRejectedError(`alipay bill: no 业务明细 file in the zip (${Object.keys(entries).join(', ')})`, 'bill_format');
      csv = entries[name];
    }
    const lines = new TextDecoder('gbk').decode(csv).split(/\r?\n/);
    const h = lines.findIndex((l) => l.startsWith('支付宝交易号'));
    if (h < 0) throw new ProviderRejectedError('alipay bill: no header line starting with 支付宝交易号', 'bill_format');
    const head = splitCsvLine(lines[h]).map((x) => x.trim());
    const col = (n: string) => head.indexOf(n);
    const need = ['支付宝交易号', '商户订单号', '业务类型', '完成时间', '订单金额（元）', '退款批次号/请求号'];
    const missing = need.filter((n) => col(n) < 0);
    if (missing.length) throw new ProviderRejectedError(`alipay bill: missing column(s) ${missing.join(', ')}`, 'bill_format');
    const rows: StatementRow[] = [];
    for (let i = h + 1; i < lines.length; i++) {
      const line = lines[i];
      if (line.startsWith('#')) break; // the closing comment block (totals, export time)
      if (!line.trim()) continue;
      const f = splitCsvLine(line).map((v) => v.trim());
      const get = (n: string) => f[col(n)] ?? '';
      const base = { orderId: get('商户订单号'), transaction: get('支付宝交易号'), currency: 'CNY', time: parseChinaTime(get('完成时间')) };
      // Refund lines carry the amount negative; the kind says which way the money went.
      const fen = Math.abs(yuanToFen(get('订单金额（元）')));
      if (get('业务类型') === '交易') rows.push({ kind: 'payment', ...base, fen });
      else if (get('业务类型') === '退款') rows.push({ kind: 'refund', ...base, refundNo: get('退款批次号/请求号'), fen });
    }
    return rows;
  }

  private async call(method: string, biz: object, notifyUrl?: string): Promise<Record<string, unknown>> {
    const params = new URLSearchParams({
      app_id: this.c.app_id,
      method,
      format: 'JSON',
      charset: 'utf-8',
      sign_type: 'RSA2',
      timestamp: formatChinaTime(Date.now()),
      version: '1.0',
      biz_content: JSON.stringify(biz),
      ...(notifyUrl ? { notify_url: notifyUrl } : {}),
    });
    params.set('sign', createSign('RSA-SHA256').update(signContent(params, ['sign']), 'utf8').sign(this.appKey, 'base64'));
    const res = await httpCall(this.c.gateway, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded;charset=utf-8' }, body: params.toString() });
    const text = res.body.toString('utf8');
    const key = `${method.replace(/\./g, '_')}_response`;
    const span = jsonMemberText(text, key);
    const sign = jsonMemberText(text, 'sign', true);
    if (!span) throw new ProviderUnavailableError(`alipay ${method}: answer without ${key}`);
    const body = JSON.parse(span) as Record<string, unknown>;
    // Error answers (code 40002 ...) may be unsigned; a success must verify.
    if (body.code === '10000') {
      const signature = sign ? (JSON.parse(sign) as string) : '';
      if (!signature || !createVerify('RSA-SHA256').update(span, 'utf8').verify(this.alipayKey, signature, 'base64')) throw new ProviderUnavailableError(`alipay ${method}: answer signature does not verify`);
    }
    return body;
  }
}

function rejected(what: string, r: Record<string, unknown>): ProviderRejectedError {
  return new ProviderRejectedError(`alipay ${what}: ${String(r.code)} ${String(r.sub_code ?? '')} ${String(r.sub_msg ?? r.msg ?? '')}`.trim(), String(r.sub_code ?? r.code));
}

/** Alipay's content to sign: non-empty parameters except `skip`, sorted by name, `k=v` joined by `&`, raw values. */
export function signContent(params: URLSearchParams, skip: readonly string[]): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of params) if (!skip.includes(k) && v !== '') pairs.push([k, v]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/**
 * The exact source text of a top-level member's value in a JSON object (the signature of an
 * Alipay answer is over these bytes, so re-serialising would not do).
 */
export function jsonMemberText(text: string, key: string, last = false): string | undefined {
  const at = last ? text.lastIndexOf(`"${key}"`) : text.indexOf(`"${key}"`);
  if (at < 0) return undefined;
  let i = text.indexOf(':', at + key.length + 2) + 1;
  while (/\s/.test(text[i] ?? '')) i++;
  const start = i;
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') {
        inString = false;
        if (depth === 0) return text.slice(start, i + 1);
      }
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) return text.slice(start, i + 1);
    }
  }
  return undefined;
}
