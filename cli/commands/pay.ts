import type { Command } from 'commander';

/**
 * `submeter pay`: records one payment through the same recordPayment the API uses
 * (workers/payments.ts): integer fen, idempotent by reference, durable before it prints.
 * Prints one JSON line on stdout; exit 3 when the reference is taken by another payment.
 */
export function registerPay(program: Command): void {
  program
    .command('pay')
    .description('record a prepaid payment (idempotent by reference; a conflicting reuse is refused)')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--amount <money>', 'amount in CNY with at most 2 decimals, e.g. 100.00 (negative for a refund)')
    .requiredOption('--reference <ref>', "the payer's unique reference (bank or gateway transaction id)")
    .option('--time <rfc3339>', 'instant of the payment, RFC 3339 with an offset (default: now)')
    .option('--kind <kind>', 'payment, refund (a negative amount), deposit (negative: returned) or transfer (with --to)', 'payment')
    .option('--to <account>', 'transfer: the receiving account (the amount moves from --account to it)')
    .action(async (opts: { site: string; account: string; amount: string; reference: string; time?: string; kind: string; to?: string }) => {
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { parseFixed, moneyText, parseRfc3339 } = await import('../../core/index.ts');
      const { readEnv } = await import('../../lib/env.ts');
      const { InfluxV1 } = await import('../../influx/client.ts');
      const { createRedis } = await import('../../lib/redis.ts');
      const { recordPayment, PaymentRejectedError } = await import('../../workers/index.ts');
      const { storeError } = await import('../store-errors.ts');
      const site = loadSiteFile(opts.site);
      const { PAYMENT_KINDS } = await import('../../core/index.ts');
      const fen = parseFixed(opts.amount, 2);
      if (fen === undefined) throw Object.assign(new Error(`--amount must be a decimal with at most 2 places, got ${JSON.stringify(opts.amount)}`), { exitCode: 2 });
      if (!(PAYMENT_KINDS as readonly string[]).includes(opts.kind)) throw Object.assign(new Error(`--kind must be one of ${PAYMENT_KINDS.join(', ')}, got ${JSON.stringify(opts.kind)}`), { exitCode: 2 });
      const kind = opts.kind as (typeof PAYMENT_KINDS)[number];
      let time = Date.now();
      if (opts.time !== undefined) {
        const t = parseRfc3339(opts.time);
        if (typeof t === 'string') throw Object.assign(new Error(`--time ${t}`), { exitCode: 2 });
        time = t;
      }
      const env = readEnv();
      const influx = new InfluxV1({ url: env.SUBMETER_INFLUX_URL, db: env.SUBMETER_INFLUX_DB, token: env.SUBMETER_INFLUX_TOKEN });
      const redis = createRedis(env.SUBMETER_REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: true });
      try {
        await redis.connect().catch((err: unknown) => {
          throw storeError(err, 'the payment may or may not be recorded: run the same command again (the same reference, account and amount is recorded once)');
        });
        await influx.createDatabase();
        // Without --time the payment is stamped now; running the same command again is the
        // same payment (a duplicate, with the first run's time), never a conflict.
        const r = await recordPayment({ site, influx, redis }, { account: opts.account, fen, reference: opts.reference, time, ...(kind !== 'payment' ? { kind } : {}), ...(opts.to !== undefined ? { to: opts.to } : {}) });
        process.stdout.write(`${JSON.stringify({ status: r.status, site: r.site, account: r.account, amount: moneyText(r.fen), reference: r.reference, time: new Date(r.time).toISOString(), ...(kind !== 'payment' ? { kind } : {}), ...(opts.to !== undefined ? { to: opts.to } : {}) })}\n`);
      } catch (err) {
        if (err instanceof PaymentRejectedError) throw Object.assign(err, { exitCode: err.code === 'conflict' ? 3 : 2 });
        throw storeError(err, 'the payment may or may not be recorded: run the same command again (the same reference, account and amount is recorded once)');
      } finally {
        redis.disconnect();
      }
    });
}
