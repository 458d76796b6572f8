/** The API's public surface: the demo, the CLI and embedding code import from here. */
// Durable state for `submeter backup` registers itself (lib/backup/registry.ts).
import './backup-sections.ts';
export { buildApp } from './app.ts';
export type { ApiDeps } from './app.ts';
export { startApi, createDemoTokens } from './server.ts';
export { answerClientErrors } from './client-errors.ts';
export type { StartApiOptions, RunningApi, DemoTokens } from './server.ts';
export { SiteRef } from './site-ref.ts';
export { RedisTokenStore, hashToken, generateToken, ROLES, validateNewToken } from './auth/token-store.ts';
export type { TokenStore, TokenRecord, Role, NewToken } from './auth/token-store.ts';
export { RedisAuditLog } from './audit-log.ts';
export type { AuditLog, AuditEntry } from './audit-log.ts';
export { openapiDocument } from './openapi.ts';
