/**
 * Where a demo run keeps its state, by its `--db` name: its InfluxDB database, its Redis
 * key prefixes and its working directory. One definition, so `token create --db`,
 * `backup --db` and `reconcile` after a demo find the demo's state, and two demos with
 * different `--db` (a running `make demo` and the demo test of `make test`) never share
 * a site file, readings or spool.
 */
export const DEMO_DB_PATTERN = /^[A-Za-z0-9_]{1,64}$/;

export function demoPrefixes(db: string): { readonly workers: string; readonly queues: string; readonly api: string } {
  return { workers: db, queues: `${db}-bull`, api: `${db}-api` };
}

/** `.run/demo/<db>` under the current directory. */
export function demoDir(cwd: string, db: string): string {
  return `${cwd}/.run/demo/${db}`;
}

export function checkDemoDb(db: string, option = '--db'): void {
  if (!DEMO_DB_PATTERN.test(db)) throw Object.assign(new Error(`${option}: expected letters, digits and _, got '${db}'`), { exitCode: 2 });
}

/** `kind=prefix` options (`--redis-prefix api=myapp:api:`) as a record. */
export function parsePrefixOptions(values: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const m = /^([a-z][a-z0-9-]*)=(.+)$/.exec(v);
    if (!m) throw Object.assign(new Error(`--redis-prefix: expected kind=prefix (e.g. api=submeter:api:), got '${v}'`), { exitCode: 2 });
    out[m[1]] = m[2];
  }
  return out;
}
