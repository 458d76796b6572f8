/** One problem in a site file, with the key path (e.g. `meters[2].account`) and, when known, the line. */
export interface SiteIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
}

/** A site file that must not be used: the process refuses to start and prints every issue. */
export class SiteFileError extends Error {
  readonly source: string;
  readonly issues: readonly SiteIssue[];

  constructor(source: string, issues: readonly SiteIssue[]) {
    const lines = issues.map((i) => `  ${source}${i.line ? `:${i.line}` : ''}: ${i.path || '(top level)'}: ${i.message}`);
    super(`invalid site file ${source}:\n${lines.join('\n')}`);
    this.name = 'SiteFileError';
    this.source = source;
    this.issues = issues;
  }
}

/** Formats a key path like meters[2].connection.unit. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}
