import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type { Account } from '../core/index.ts';
import type { NotifyJob } from './queues.ts';
import { UnrecoverableError } from './queues.ts';

/**
 * Tells a tenant directly (the energy managers hear from Grafana's alert rules). One
 * message per event and channel: email over SMTP (nodemailer), or a JSON POST to the
 * account's webhook (an SMS or messaging gateway). A refused address or a 4xx from the
 * gateway is permanent (UnrecoverableError); a connection fault or 5xx is retried by the
 * notify queue with backoff.
 */

export interface SmtpOptions {
  readonly host: string;
  readonly port: number;
  /** TLS from the first byte (port 465). @defaultValue false (STARTTLS when offered) */
  readonly secure?: boolean;
  readonly auth?: { readonly user: string; readonly pass: string };
  /** Sender address. */
  readonly from: string;
  /** @defaultValue false: reject self-signed relays */
  readonly allowSelfSigned?: boolean;
}

export interface NotifierOptions {
  /** Without it, email contacts are skipped (logged). */
  readonly smtp?: SmtpOptions;
  /** @defaultValue 10000 */
  readonly webhookTimeoutMs?: number;
}

export interface Notifier {
  /** The channels an account can be reached on. */
  channels(account: Account): ('email' | 'webhook')[];
  send(account: Account, job: NotifyJob): Promise<void>;
  close(): void;
}

export function createNotifier(opts: NotifierOptions = {}): Notifier {
  let transport: Transporter | undefined;
  if (opts.smtp) {
    const s = opts.smtp;
    if (!s.from.includes('@')) throw new Error(`smtp.from must be an email address, got ${JSON.stringify(s.from)}`);
    transport = nodemailer.createTransport({
      host: s.host,
      port: s.port,
      secure: s.secure ?? false,
      auth: s.auth ? { user: s.auth.user, pass: s.auth.pass } : undefined,
      tls: s.allowSelfSigned ? { rejectUnauthorized: false } : undefined,
      connectionTimeout: 10_000,
    });
  }
  const timeout = opts.webhookTimeoutMs ?? 10_000;
  return {
    channels(account) {
      const out: ('email' | 'webhook')[] = [];
      if (account.contact?.email && transport) out.push('email');
      if (account.contact?.webhook) out.push('webhook');
      return out;
    },
    async send(account, job) {
      if (job.channel === 'email') {
        const to = account.contact?.email;
        if (!to || !transport) throw new UnrecoverableError(`account ${account.id} has no email contact or no SMTP relay is configured`);
        try {
          await transport.sendMail({ from: opts.smtp!.from, to, subject: job.subject, text: job.text });
        } catch (err) {
          const e = err as { responseCode?: number; message: string };
          // 5xx SMTP replies are permanent (bad mailbox); 4xx and network faults are not.
          if (e.responseCode !== undefined && e.responseCode >= 500) throw new UnrecoverableError(`smtp refused mail to ${to}: ${e.message}`);
          throw err;
        }
        return;
      }
      const url = account.contact?.webhook;
      if (!url) throw new UnrecoverableError(`account ${account.id} has no webhook contact`);
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ site: job.site, account: job.account, kind: job.kind, time: new Date(job.time).toISOString(), subject: job.subject, text: job.text }),
        signal: AbortSignal.timeout(timeout),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return;
      const msg = `webhook ${new URL(url).host} answered ${res.status}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new UnrecoverableError(msg);
      throw new Error(msg);
    },
    close() {
      transport?.close();
    },
  };
}
