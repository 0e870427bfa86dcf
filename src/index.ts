/**
 * Gatehouse's public API. Host applications build on these names only.
 */
export { loadConfig, ConfigError, type GatehouseConfig } from './config.js';
export { createGatehouse, type Gatehouse, type GatehouseOptions } from './gatehouse.js';
export { gatehouseFastify, type GatehousePluginOptions } from './http/plugin.js';
export { requires, sessionOf, userIdOf, type RouteRequirement, type RequestPrincipal } from './http/gate.js';
export { parse } from './http/validation.js';
export * from './core/errors.js';
export type { Scope } from './core/scopes.js';
export type { SessionState, AuthMethod } from './core/session-state.js';
