// The built-in HTTP server (fastify): /health, /metrics, and routes other stages mount.
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyRequest, type HTTPMethods, type RouteHandlerMethod } from 'fastify';
import { PlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import { isLoopback, requestAllowed } from './auth.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics-registry.js';

export interface HealthCheck {
  ok: boolean;
  /** Short reason, shown to whoever polls /health. */
  detail?: string;
}

/** Named checks, e.g. `{ store: { ok: true }, watcher: { ok: false, detail: 'PW_E_WATCH' } }`. */
export type HealthChecks = Record<string, HealthCheck>;

export interface HealthBody {
  status: 'ok' | 'degraded';
  checks: HealthChecks;
}

export interface HttpServerOptions {
  /** Listen address (default 127.0.0.1). Any other than loopback requires `token`. */
  host?: string;
  /** TCP port (default 8080; 0 picks a free one, read back from `port`). */
  port?: number;
  /**
   * Bearer token. When set, every path but /health requires `Authorization: Bearer <token>`, or
   * the route's own rule (RouteAccess) to allow the request.
   */
  token?: string;
  /** Runs the daemon's health checks; called on each GET /health. */
  health: () => HealthChecks | Promise<HealthChecks>;
  /** Renders the Prometheus exposition text (e.g. a `Metrics` instance). */
  metrics: { expose(): string };
  /** Child logger, e.g. `root.child({ module: 'http' })`. */
  logger: Logger;
}

/**
 * A route's own access rule, in its fastify route config (`app.get(path, { config: { authorize } },
 * handler)`): asked when the server requires a token and the request does not carry it; true lets
 * the request through. The review page uses it for its browser sessions.
 */
export interface RouteAccess {
  authorize?: (request: FastifyRequest) => boolean;
}

/** A plugin receives the fastify instance before it listens; register routes, hooks, static files. */
export type HttpPlugin = FastifyPluginAsync;

/**
 * The HTTP server. Mount extra routes with `route()` or `register()` before `start()`.
 */
export class HttpServer {
  private readonly options: HttpServerOptions;
  private readonly log: Logger;
  private readonly routes: Array<{ method: HTTPMethods; path: string; handler: RouteHandlerMethod }> = [];
  private readonly plugins: HttpPlugin[] = [];
  private app: FastifyInstance | null = null;
  private boundPort = 0;

  constructor(options: HttpServerOptions) {
    this.options = options;
    this.log = options.logger;
  }

  /** The bound port (after start). */
  get port(): number {
    return this.boundPort;
  }

  /** `http://host:port` (after start). */
  get url(): string {
    const host = this.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.boundPort}`;
  }

  private get host(): string {
    return this.options.host ?? '127.0.0.1';
  }

  /** Adds one route. Call before start(). */
  route(method: HTTPMethods, path: string, handler: RouteHandlerMethod): void {
    this.assertNotStarted();
    this.routes.push({ method, path, handler });
  }

  /** Adds a fastify plugin (several routes, hooks, content parsers). Call before start(). */
  register(plugin: HttpPlugin): void {
    this.assertNotStarted();
    this.plugins.push(plugin);
  }

  /**
   * Listens. Throws PW_E_CONFIG_INVALID for a non-loopback host without a token and
   * PW_E_HTTP_BIND when the address cannot be bound.
   */
  async start(): Promise<void> {
    this.assertNotStarted();
    const { token } = this.options;
    const port = this.options.port ?? 8080;
    if (!isLoopback(this.host) && (token === undefined || token === '')) {
      throw new PlankwatchError(
        'PW_E_CONFIG_INVALID',
        `http.tokenFile is required when http.host (${this.host}) is not a loopback address: name a file holding the token, or listen on 127.0.0.1.`,
      );
    }
    const app = Fastify({ logger: false });
    app.addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?', 1)[0]!;
      if (requestAllowed(token, path, request.headers.authorization)) return;
      const access = request.routeOptions.config as RouteAccess | undefined;
      if (access?.authorize?.(request) === true) return;
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' });
    });
    app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
      const status = err.statusCode ?? 500;
      if (status >= 500) this.log.error({ err, code: 'PW_E_INTERNAL', method: request.method, path: request.url }, 'HTTP handler failed');
      return reply.code(status).send({ error: status >= 500 ? 'internal error' : err.message });
    });
    app.get('/health', async (_request, reply) => {
      const body = await this.runHealth();
      return reply.code(body.status === 'ok' ? 200 : 503).send(body);
    });
    app.get('/metrics', async (_request, reply) => {
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(this.options.metrics.expose());
    });
    for (const r of this.routes) app.route({ method: r.method, url: r.path, handler: r.handler });
    for (const plugin of this.plugins) await app.register(plugin);
    try {
      await app.listen({ host: this.host, port });
    } catch (err) {
      await app.close().catch(() => undefined);
      throw new PlankwatchError('PW_E_HTTP_BIND', `${this.host}:${port}: ${(err as Error).message}`, { cause: err });
    }
    const address = app.server.address();
    this.boundPort = typeof address === 'object' && address !== null ? address.port : port;
    this.app = app;
    this.log.info({ url: this.url, auth: token !== undefined && token !== '' }, 'HTTP server listening');
  }

  /** Stops listening and closes open connections. */
  async stop(): Promise<void> {
    const app = this.app;
    this.app = null;
    if (app !== null) await app.close();
  }

  private async runHealth(): Promise<HealthBody> {
    let checks: HealthChecks;
    try {
      checks = await this.options.health();
    } catch (err) {
      this.log.error({ err, code: 'PW_E_INTERNAL' }, 'health provider failed');
      checks = { health: { ok: false, detail: 'health provider failed' } };
    }
    const ok = Object.values(checks).every((c) => c.ok);
    return { status: ok ? 'ok' : 'degraded', checks };
  }

  private assertNotStarted(): void {
    if (this.app !== null) throw new Error('HttpServer: routes and plugins must be added before start()');
  }
}
