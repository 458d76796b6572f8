/**
 * The Redis channel on which the API publishes a site id after a manager's reload of the
 * site file (billing.md section 11 rule 9). The workers and the collector subscribe to it,
 * so the file in force is the same in every process; the prefix is the workers' key prefix.
 */
export function siteReloadChannel(keyPrefix = 'submeter'): string {
  return `${keyPrefix}:site-reload`;
}
