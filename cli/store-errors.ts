/**
 * Storage failures in words for a person at a terminal (issue 11): never InfluxDB's own
 * text (it quotes line protocol, queries and server internals), only which store, whether
 * trying again helps, and what happened to the data. The original error stays as `cause`
 * (printed with SUBMETER_DEBUG=1).
 */
export function storeError(err: unknown, hint = ''): Error {
  const e = err as { name?: string; status?: number; retryable?: boolean; message?: string; code?: string };
  let message: string | undefined;
  if (e?.name === 'InfluxError') {
    message = e.retryable
      ? `InfluxDB is unavailable or did not answer in time${e.status ? ` (HTTP ${e.status})` : ''}; try again`
      : `InfluxDB refused the request (HTTP ${e.status ?? '?'}); run with SUBMETER_DEBUG=1 for its answer`;
  } else if (e?.name === 'MaxRetriesPerRequestError' || /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|Connection is closed|connect ETIMEDOUT/.test(String(e?.message ?? ''))) {
    message = 'Redis is unavailable; try again';
  }
  if (!message) return err as Error;
  return Object.assign(new Error(`${message}${hint ? `; ${hint}` : ''}`, { cause: err }), { exitCode: 1 });
}
