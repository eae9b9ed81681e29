// The HTTP stage's public surface: the server (/health, /metrics, the routes other stages bring),
// the daemon's metrics, and the access rules the brokers share.
export { HttpServer, type HealthBody, type HealthCheck, type HealthChecks, type HttpPlugin, type HttpServerOptions, type RouteAccess } from './server.js';
export { Metrics, type SettledTotals } from './metrics.js';
export { isLoopback } from './auth.js';
export { parseAllowedHosts } from './origin.js';
