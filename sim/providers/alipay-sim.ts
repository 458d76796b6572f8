import { createSign, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { zipSync } from 'fflate';
import iconv from 'iconv-lite';
import type { SimNotification, SimOptions } from './base.ts';
import { ProviderSim } from './base.ts';
import { chinaDate } from './wechat-sim.ts';

/**
 * Alipay open-platform simulator: the gateway (precreate, query, close, refund, bill
 * download URL) and the zipped GBK trade bill. It verifies the merchant's RSA2 request
 * signatures with the app key it generated and signs answers and notifications with its
 * own Alipay key.
 */
export class AlipaySim extends ProviderSim {
  readonly appId = '2021000117600001';
  readonly sellerId = '2088102177846880';
  private readonly app = generateKeyPairSync('rsa', { modulusLength: 2048 });
  private readonly alipay = generateKeyPairSync('rsa', { modulusLength: 2048 });
  statementEdit?: (rows: AlipayBillRow[]) => AlipayBillRow[];

  constructor(opts: SimOptions = {}) {
    super(opts);
  }

  /** The merchant's credentials; keys in the bare base64 form Alipay's key tool prints. */
  get credentials() {
    return {
      app_id: this.appId,
      app_private_key: (this.app.privateKey.export({ type: 'pkcs8', format: 'der' }) as Buffer).toString('base64'),
      alipay_public_key: (this.alipay.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64'),
      seller_id: this.sellerId,
      gateway: `${this.url}/gateway.do`,
    };
  }

  protected handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const bill = /^\/bill\/(\d{4}-\d{2}-\d{2})\.zip$/.exec(url.pathname);
    if (req.method === 'GET' && bill) {
      res.writeHead(200, { 'content-type': 'application/zip' });
      res.end(this.statementFile(bill[1]));
      return;
    }
    if (req.method !== 'POST' || url.pathname !== '/gateway.do') {
      res.writeHead(404);
      res.end();
      return;
    }
    const p = new URLSearchParams(body.toString('utf8'));
    const method = p.get('method') ?? '';
    const key = `${method.replace(/\./g, '_')}_response`;
    if (!this.verifyRequest(p)) return this.answer(res, key, { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-signature', sub_msg: '验签出错' }, false);
    if (p.get('app_id') !== this.appId) return this.answer(res, key, { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-app-id' }, false);
    const biz = JSON.parse(p.get('biz_content') ?? '{}') as Record<string, string>;
    const o = biz.out_trade_no ? this.orders.get(biz.out_trade_no) : undefined;
    const notFound = { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.TRADE_NOT_EXIST', sub_msg: '交易不存在' };
    switch (method) {
      case 'alipay.trade.precreate':
        if (!o) this.orders.set(biz.out_trade_no, { id: biz.out_trade_no, fen: fen(biz.total_amount), currency: 'CNY', notifyUrl: p.get('notify_url') ?? '', description: biz.subject, expiresAt: Date.parse(`${biz.time_expire.replace(' ', 'T')}+08:00`), status: 'pending', refunds: [] });
        return this.answer(res, key, { code: '10000', msg: 'Success', out_trade_no: biz.out_trade_no, qr_code: `https://qr.alipay.com/bax0${randomBytes(8).toString('hex')}` });
      case 'alipay.trade.query':
        if (!o) return this.answer(res, key, notFound);
        return this.answer(res, key, { code: '10000', msg: 'Success', out_trade_no: o.id, trade_status: o.status === 'paid' ? 'TRADE_SUCCESS' : o.status === 'closed' ? 'TRADE_CLOSED' : 'WAIT_BUYER_PAY', total_amount: yuan(o.paidFen ?? o.fen), ...(o.status === 'paid' ? { trade_no: o.transaction, send_pay_date: chinaTime(o.paidAt!) } : {}) });
      case 'alipay.trade.close':
        if (!o) return this.answer(res, key, notFound);
        if (o.status === 'pending') o.status = 'closed';
        return this.answer(res, key, { code: '10000', msg: 'Success', out_trade_no: o.id });
      case 'alipay.trade.refund': {
        if (!o || o.status !== 'paid') return this.answer(res, key, notFound);
        const want = fen(biz.refund_amount);
        let r = o.refunds.find((x) => x.refundNo === biz.out_request_no);
        const done = o.refunds.reduce((s, x) => s + x.fen, 0);
        if (!r && want + done > o.paidFen!) return this.answer(res, key, { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', sub_msg: '退款金额超限' });
        if (!r) o.refunds.push((r = { refundNo: biz.out_request_no, refundId: biz.out_request_no, fen: want, at: this.now() }));
        return this.answer(res, key, { code: '10000', msg: 'Success', trade_no: o.transaction, out_trade_no: o.id, fund_change: 'Y', refund_fee: yuan(o.refunds.reduce((s, x) => s + x.fen, 0)), gmt_refund_pay: chinaTime(r.at) });
      }
      case 'alipay.data.dataservice.bill.downloadurl.query':
        return this.answer(res, key, { code: '10000', msg: 'Success', bill_download_url: `${this.url}/bill/${biz.bill_date}.zip` });
      default:
        return this.answer(res, key, { code: '40004', msg: 'Business Failed', sub_code: 'isv.invalid-method' });
    }
  }

  pay(orderId: string, opts: { fen?: number; at?: number } = {}): SimNotification {
    const o = this.order(orderId);
    if (o.status !== 'paid') {
      o.status = 'paid';
      o.transaction = `${chinaDate(this.now()).replace(/-/g, '')}2200${this.id('', 18)}`;
      o.paidFen = opts.fen ?? o.fen;
      o.paidAt = Math.floor((opts.at ?? this.now()) / 1000) * 1000;
    }
    const p = new URLSearchParams({
      gmt_create: chinaTime(o.paidAt! - 5000),
      charset: 'utf-8',
      seller_email: 'merchant@example.com',
      subject: o.description,
      buyer_id: '2088102177846875',
      invoice_amount: yuan(o.paidFen!),
      notify_id: randomBytes(16).toString('hex'),
      fund_bill_list: JSON.stringify([{ amount: yuan(o.paidFen!), fundChannel: 'ALIPAYACCOUNT' }]),
      notify_type: 'trade_status_sync',
      trade_status: 'TRADE_SUCCESS',
      receipt_amount: yuan(o.paidFen!),
      app_id: this.appId,
      buyer_pay_amount: yuan(o.paidFen!),
      sign_type: 'RSA2',
      seller_id: this.sellerId,
      gmt_payment: chinaTime(o.paidAt!),
      notify_time: chinaTime(this.now()),
      version: '1.0',
      out_trade_no: o.id,
      total_amount: yuan(o.paidFen!),
      trade_no: o.transaction!,
      auth_app_id: this.appId,
      point_amount: '0.00',
    });
    p.set('sign', this.sign(content(p, ['sign', 'sign_type'])));
    return { url: o.notifyUrl, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: Buffer.from(p.toString(), 'utf8') };
  }

  /** The zip Alipay serves for a day: the detail CSV and its summary, GBK. */
  statementFile(date: string): Buffer {
    let rows: AlipayBillRow[] = [];
    for (const o of this.orders.values()) {
      if (o.status === 'paid' && chinaDate(o.paidAt!) === date) rows.push({ transaction: o.transaction!, orderId: o.id, type: '交易', time: o.paidAt!, fen: o.paidFen!, refundNo: '' });
      for (const r of o.refunds) if (chinaDate(r.at) === date) rows.push({ transaction: o.transaction!, orderId: o.id, type: '退款', time: r.at, fen: -r.fen, refundNo: r.refundNo });
    }
    if (this.statementEdit) rows = this.statementEdit(rows);
    const d = date.replace(/-/g, '');
    const head = '支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注';
    const detail = [
      '#支付宝业务明细查询',
      `#账号：[${this.sellerId}0156]`,
      `#起始日期：[${date} 00:00:00]   终止日期：[${date} 23:59:59]`,
      '#-----------------------------------------业务明细列表----------------------------------------',
      head,
      ...rows.map((r) => [r.transaction, r.orderId, r.type, '电费充值', chinaTime(r.time - 5000), chinaTime(r.time), '', '', '', '', 'buyer@example.com', yuan(r.fen), yuan(r.fen), '0.00', '0.00', '0.00', '0.00', '0.00', '', '0.00', '0.00', r.refundNo, '0.00', '0.00', ''].map((f) => `${f}\t`).join(',')),
      '#-----------------------------------------业务明细列表结束------------------------------------',
      `#交易合计：${rows.filter((r) => r.type === '交易').length}笔，商家实收共${yuan(rows.filter((r) => r.type === '交易').reduce((s, r) => s + r.fen, 0))}元`,
      `#导出时间：[${chinaTime(this.now())}]`,
    ].join('\r\n');
    const summary = ['#支付宝业务汇总查询', '门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）', `合计,,${rows.filter((r) => r.type === '交易').length},${rows.filter((r) => r.type === '退款').length},${yuan(rows.reduce((s, r) => s + r.fen, 0))}`].join('\r\n');
    const name = `${this.sellerId}0156_${d}`;
    return Buffer.from(zipSync({ [`${name}_业务明细.csv`]: new Uint8Array(iconv.encode(detail, 'gbk')), [`${name}_业务明细(汇总).csv`]: new Uint8Array(iconv.encode(summary, 'gbk')) }));
  }

  private answer(res: ServerResponse, key: string, body: object, signed = true): void {
    const json = JSON.stringify(body);
    const text = signed ? `{"${key}":${json},"sign":"${this.sign(json)}"}` : `{"${key}":${json}}`;
    res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
    res.end(text);
  }

  private sign(text: string): string {
    return createSign('RSA-SHA256').update(text, 'utf8').sign(this.alipay.privateKey, 'base64');
  }

  private verifyRequest(p: URLSearchParams): boolean {
    const sig = p.get('sign');
    if (!sig || p.get('sign_type') !== 'RSA2') return false;
    return createVerify('RSA-SHA256').update(content(p, ['sign']), 'utf8').verify(this.app.publicKey, sig, 'base64');
  }
}

export interface AlipayBillRow {
  transaction: string;
  orderId: string;
  type: '交易' | '退款';
  time: number;
  /** Signed fen: refunds negative, as the bill prints them. */
  fen: number;
  refundNo: string;
}

function content(p: URLSearchParams, skip: string[]): string {
  return [...p.entries()]
    .filter(([k, v]) => !skip.includes(k) && v !== '')
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}
function fen(yuanText: string): number {
  const [i, f = ''] = yuanText.split('.');
  return Number(i) * 100 + Number(f.padEnd(2, '0'));
}
function yuan(f: number): string {
  return `${f < 0 ? '-' : ''}${Math.floor(Math.abs(f) / 100)}.${String(Math.abs(f) % 100).padStart(2, '0')}`;
}
function chinaTime(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
}
