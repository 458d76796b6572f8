import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { parseControlPassword } from '../inputs/dlt645/control.ts';
import type { ControlPassword } from '../inputs/dlt645/control.ts';

/**
 * DL/T 645 control passwords and operator codes (issue 13). Secrets: they come from the
 * environment or a secrets file, never from the site file, and never appear in an error
 * message or a log line (pino redacts `password` keys as well).
 *
 * - `SUBMETER_DLT645_PASSWORD`: 8 digits, the level byte (02 or 04) then the 6-digit
 *   password, e.g. `02123456`: the password of every meter without its own entry.
 * - `SUBMETER_DLT645_OPERATOR`: the operator code C3..C0 sent with every command (8 hex
 *   digits). @defaultValue 00000000
 * - `SUBMETER_RELAY_SECRETS`: path of a YAML or JSON file for sites whose meters differ:
 *   `meters: { T102: "02123456", T105: { password: "04000001", operator: "00000002" } }`.
 *   Keep it readable by the collector's user only.
 */
export interface RelaySecrets {
  /** The password and operator code for a meter, or undefined when none is configured. */
  forMeter(meterId: string): { readonly password: ControlPassword; readonly operator: string } | undefined;
  /** Where the secrets came from, for messages (never the values). */
  readonly source: string;
}

export class RelaySecretsError extends Error {
  override name = 'RelaySecretsError';
}

const OPERATOR = /^[0-9A-Fa-f]{8}$/;

const entry = z.union([z.string(), z.strictObject({ password: z.string(), operator: z.string().optional() })]);
const fileSchema = z.strictObject({ meters: z.record(z.string(), entry) });

function password(text: string, where: string): ControlPassword {
  const p = parseControlPassword(text);
  if (!p.ok) throw new RelaySecretsError(`${where}: ${p.error.message}`);
  return p.value;
}

function operator(text: string, where: string): string {
  if (!OPERATOR.test(text)) throw new RelaySecretsError(`${where}: the operator code must be 8 hex digits`);
  return text.toUpperCase();
}

/** Reads and validates the secrets once at start; throws RelaySecretsError naming the variable or file and key. */
export function loadRelaySecrets(env: NodeJS.ProcessEnv = process.env): RelaySecrets {
  const defaultOperator = env.SUBMETER_DLT645_OPERATOR !== undefined ? operator(env.SUBMETER_DLT645_OPERATOR, 'SUBMETER_DLT645_OPERATOR') : '00000000';
  const fallback = env.SUBMETER_DLT645_PASSWORD !== undefined && env.SUBMETER_DLT645_PASSWORD !== '' ? password(env.SUBMETER_DLT645_PASSWORD, 'SUBMETER_DLT645_PASSWORD') : undefined;
  const perMeter = new Map<string, { password: ControlPassword; operator: string }>();
  const file = env.SUBMETER_RELAY_SECRETS;
  if (file) {
    let data: unknown;
    try {
      data = parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new RelaySecretsError(`SUBMETER_RELAY_SECRETS ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'not YAML/JSON'})`);
    }
    const r = fileSchema.safeParse(data);
    if (!r.success) {
      const i = r.error.issues[0];
      throw new RelaySecretsError(`SUBMETER_RELAY_SECRETS ${file}: ${i.path.join('.') || '(top level)'}: ${i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : 'expected meters: { <meter id>: "<level+password>" | { password, operator } }'}`);
    }
    for (const [id, e] of Object.entries(r.data.meters)) {
      const where = `SUBMETER_RELAY_SECRETS ${file}: meters.${id}`;
      if (typeof e === 'string') perMeter.set(id, { password: password(e, where), operator: defaultOperator });
      else perMeter.set(id, { password: password(e.password, `${where}.password`), operator: e.operator !== undefined ? operator(e.operator, `${where}.operator`) : defaultOperator });
    }
  }
  const source = [file ? `SUBMETER_RELAY_SECRETS (${perMeter.size} meter(s))` : '', fallback ? 'SUBMETER_DLT645_PASSWORD' : ''].filter(Boolean).join(' + ') || 'none';
  return {
    source,
    forMeter(meterId) {
      return perMeter.get(meterId) ?? (fallback ? { password: fallback, operator: defaultOperator } : undefined);
    },
  };
}
