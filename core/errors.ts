/**
 * Bad billing input (an unknown meter or account, a line that does not parse, a price
 * missing on a day that needs one): never retried, reported with where it came from.
 * The CLI prints `file:line: field: message`.
 */
export class BillingInputError extends Error {
  /** The message without the `file:line: field:` prefix. */
  readonly detail: string;
  constructor(
    message: string,
    readonly where: { readonly file?: string; readonly line?: number; readonly field?: string } = {},
  ) {
    const prefix = [where.file && `${where.file}${where.line ? `:${where.line}` : ''}`, where.field].filter(Boolean).join(': ');
    super(prefix ? `${prefix}: ${message}` : message);
    this.name = 'BillingInputError';
    this.detail = message;
  }
}
