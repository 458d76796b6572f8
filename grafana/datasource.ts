/**
 * The one InfluxDB datasource every dashboard and alert rule points at. A fixed uid, so
 * the provisioned datasource, the generated dashboards and the rule files agree without
 * lookups at start-up.
 */
export const DATASOURCE_UID = 'submeter-influxdb';
export const DATASOURCE_REF = { type: 'influxdb', uid: DATASOURCE_UID } as const;

/** Server-side expressions (reduce, math, threshold) in alert rules use this pseudo-datasource. */
export const EXPR_UID = '__expr__';

/** Dashboard uids: links in alert messages and between dashboards use them. */
export const DASHBOARD_UID = {
  site: 'submeter-site',
  tenant: 'submeter-tenant',
  balances: 'submeter-balances',
  health: 'submeter-health',
} as const;

/** The Grafana folder the dashboards and alert rules live in. */
export const FOLDER = 'submeter';
