import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { OpenApiDocument } from './openapi.ts';

// ajv-formats is CommonJS; under NodeNext its default export arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv2020) => void;

const DOC_ID = 'https://submeter.invalid/openapi.json';

/** JSON-pointer escaping for a path key ("/api/v1/me" -> "~1api~1v1~1me"). */
const ptr = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

interface Param {
  readonly name: string;
  readonly in: 'path' | 'query';
  readonly required?: boolean;
  readonly schema: object;
}

interface RawOperation {
  parameters?: Param[];
  requestBody?: object;
  responses: Record<string, { content?: Record<string, unknown> }>;
}

export interface RequestValidators {
  readonly params: ValidateFunction;
  readonly query: ValidateFunction;
  readonly body?: ValidateFunction;
}

/**
 * One ajv instance over the whole document, so `$ref`s resolve exactly as a client's
 * OpenAPI tooling would. `strict: false` because OpenAPI keywords (x-roles, operationId,
 * ...) sit beside the schemas.
 */
export class OpenApiValidator {
  private readonly ajv: Ajv2020;
  private readonly doc: OpenApiDocument;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(doc: OpenApiDocument) {
    this.doc = doc;
    // verbose: errors carry their schema, so a schema's `x-message` can explain a mismatch.
    this.ajv = new Ajv2020({ strict: false, allErrors: true, useDefaults: true, verbose: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ ...doc, $id: DOC_ID });
  }

  private op(path: string, method: string): RawOperation {
    const op = (this.doc.paths as Record<string, Record<string, RawOperation>>)[path]?.[method];
    if (!op) throw new Error(`no operation ${method.toUpperCase()} ${path} in the OpenAPI document`);
    return op;
  }

  /** Validators for an operation's path parameters, query and JSON body. */
  request(path: string, method: string): RequestValidators {
    const op = this.op(path, method);
    const group = (where: 'path' | 'query') => {
      const ps = (op.parameters ?? []).filter((p) => p.in === where);
      return this.ajv.compile({
        type: 'object',
        properties: Object.fromEntries(ps.map((p) => [p.name, p.schema])),
        required: ps.filter((p) => p.required).map((p) => p.name),
        additionalProperties: false,
      });
    };
    const base = `${DOC_ID}#/paths/${ptr(path)}/${method}`;
    return {
      params: group('path'),
      query: group('query'),
      body: op.requestBody ? this.ajv.compile({ $ref: `${base}/requestBody/content/application~1json/schema` }) : undefined,
    };
  }

  /**
   * Checks a response against the document: the status must be documented, the content
   * type listed, and a JSON body must match its schema. Returns the problems ([] = conforms).
   */
  response(path: string, method: string, status: number, contentType: string | undefined, body: unknown): string[] {
    const op = this.op(path, method);
    const resp = op.responses[String(status)];
    if (!resp) return [`status ${status} is not documented for ${method.toUpperCase()} ${path}`];
    if (!resp.content) return body === undefined || body === '' || body === null ? [] : [`status ${status} documents no body`];
    const type = (contentType ?? '').split(';')[0].trim();
    if (!(type in resp.content)) return [`content type ${type || '(none)'} is not documented for ${status} (${Object.keys(resp.content).join(', ')})`];
    const key = `${DOC_ID}#/paths/${ptr(path)}/${method}/responses/${status}/content/${ptr(type)}/schema`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile({ $ref: key });
      this.compiled.set(key, validate);
    }
    return validate(body) ? [] : formatErrors(validate.errors);
  }
}

/**
 * One line per problem. A schema with `x-message` (dates, months) says what it wants in
 * words instead of ajv's "must match pattern ..."; one line per offending value.
 */
export function formatErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    const own = (e.parentSchema as { 'x-message'?: string } | undefined)?.['x-message'];
    const line = own && (e.keyword === 'pattern' || e.keyword === 'format') ? `${e.instancePath || '(root)'} ${own}` : `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? `: ${String(e.params.additionalProperty)}` : ''}`;
    if (!out.includes(line)) out.push(line);
  }
  return out;
}
