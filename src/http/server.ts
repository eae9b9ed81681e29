// The built-in HTTP server (fastify): /health, /metrics, and routes other stages mount.
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest, type HTTPMethods, type RouteHandlerMethod } from 'fastify';
import { ERRORS, PlankwatchError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Part } from '../types.js';
import { AuthThrottle, OPEN_PATHS, isLoopback, logWrongToken, requestAllowed, type AuthThrottleOptions } from './auth.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics-registry.js';
import { crossSiteRefusal, HostAllowList, SAFE_METHODS } from './origin.js';

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
  /**
   * Names or addresses, `name` or `name:port`, this server answers to besides 127.0.0.1, localhost,
   * [::1] and `host` with `port` (see HostAllowList.forServer): http.allowedHosts, parsed by
   * parseAllowedHosts.
   */
  allowedHosts?: readonly string[];
  /** The config key holding allowedHosts, named in refusals (default "http.allowedHosts"). */
  allowedHostsKey?: string;
  /** Lockout of addresses that send wrong tokens (defaults: 5 tries, then 2 s doubling up to 15 min). */
  authThrottle?: AuthThrottleOptions;
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
  /**
   * The route takes a plain HTML form (application/x-www-form-urlencoded) from this server's own
   * pages besides JSON: the review login and logout. Every other route that changes something
   * takes JSON only (see ./origin.ts).
   */
  form?: boolean;
}

/** A plugin receives the fastify instance before it listens; register routes, hooks, static files. */
export type HttpPlugin = FastifyPluginAsync;

/**
 * The HTTP server. Mount extra routes with `route()` or `register()` before `start()`.
 */
export class HttpServer implements Part {
  readonly name = 'http';
  private readonly options: HttpServerOptions;
  private readonly log: Logger;
  private readonly routes: Array<{ method: HTTPMethods; path: string; handler: RouteHandlerMethod }> = [];
  private readonly plugins: HttpPlugin[] = [];
  private app: FastifyInstance | null = null;
  private boundPort = 0;
  private hosts: HostAllowList | null = null;
  /** Refusals already logged as warnings (code and value); repeats go to debug. */
  private readonly warned = new Set<string>();
  /**
   * Wrong tokens per client address. Shared with routes that check the token themselves (the review
   * login form), so that the form and the bearer header are one budget of guesses.
   */
  readonly authThrottle: AuthThrottle;

  constructor(options: HttpServerOptions) {
    this.options = options;
    this.log = options.logger;
    this.authThrottle = new AuthThrottle(options.authThrottle);
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
    const hasToken = token !== undefined && token !== '';
    app.addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?', 1)[0]!;
      const access = request.routeOptions.config as RouteAccess | undefined;
      // Same origin first: a rebound or cross-site request learns nothing else, not even 401.
      const hosts = this.hosts;
      if (hosts === null || !hosts.allowsHost(request.headers.host)) {
        const host = request.headers.host ?? '';
        this.warnOnce('PW_E_HTTP_HOST', host, { method: request.method, path, host: host.slice(0, 200), ip: request.ip }, 'request for a host this server does not answer to refused');
        return this.refuse(reply, 421, 'PW_E_HTTP_HOST', `Host "${host.slice(0, 200)}" is not a name of this server.`);
      }
      if (!SAFE_METHODS.has(request.method)) {
        const refusal = crossSiteRefusal(request.headers, hosts, access?.form === true);
        if (refusal !== undefined) {
          this.warnOnce(refusal.code, refusal.value ?? '', { method: request.method, path, value: refusal.value?.slice(0, 200), ip: request.ip }, 'cross-site or non-JSON request refused');
          return this.refuse(reply, refusal.status, refusal.code, `${request.method} ${path}: ${refusal.detail}`);
        }
      }
      // A token presented is a guess until checked: addresses that guess wrong are locked out a while.
      const authorization = request.headers.authorization;
      const guesses = hasToken && authorization !== undefined && !OPEN_PATHS.has(path);
      if (guesses) {
        const waitMs = this.authThrottle.lockedForMs(request.ip);
        if (waitMs > 0) return this.refuseLocked(reply, waitMs);
      }
      if (requestAllowed(token, path, authorization)) {
        if (guesses) this.authThrottle.right(request.ip);
        return;
      }
      if (access?.authorize?.(request) === true) return;
      if (guesses) {
        const t = this.authThrottle.wrong(request.ip);
        logWrongToken(this.log, 'PW_E_HTTP_AUTH', request.ip, t, 'wrong bearer token');
      }
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' });
    });
    // A POST with nothing to say may send `Content-Type: application/json` and no body (the rule
    // above asks every such request for that type); fastify's own parser refuses an empty body.
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body === '') done(null, undefined);
      else void parseJson(request, body as string, done);
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
    this.hosts = HostAllowList.forServer(this.host, this.boundPort, this.options.allowedHosts ?? []);
    this.app = app;
    this.log.info({ url: this.url, auth: token !== undefined && token !== '' }, 'HTTP server listening');
  }

  /** Stops listening and closes open connections. */
  async stop(): Promise<void> {
    const app = this.app;
    this.app = null;
    if (app !== null) await app.close();
  }

  /** A coded refusal: `{ error: { code, message } }`, the message saying what to do. */
  private refuse(reply: FastifyReply, status: number, code: ErrorCode, detail: string): FastifyReply {
    const key = this.options.allowedHostsKey ?? 'http.allowedHosts';
    const action = ERRORS[code].action.replace(/http\.allowedHosts( \(shore\.httpAllowedHosts on the shore\))?/, key);
    return reply.code(status).send({ error: { code, message: `${detail} ${action}` } });
  }

  private refuseLocked(reply: FastifyReply, waitMs: number): FastifyReply {
    const seconds = Math.ceil(waitMs / 1000);
    reply.header('retry-after', String(seconds));
    return this.refuse(reply, 429, 'PW_E_HTTP_AUTH_LOCKED', `${ERRORS.PW_E_HTTP_AUTH_LOCKED.message} Try again in ${seconds} s.`);
  }

  /** A refusal is logged as a warning the first time per code and value, then at debug level. */
  private warnOnce(code: ErrorCode, value: string, fields: Record<string, unknown>, msg: string): void {
    const key = `${code} ${value}`;
    if (this.warned.has(key)) {
      this.log.debug({ code, ...fields }, msg);
      return;
    }
    if (this.warned.size < 1000) this.warned.add(key);
    this.log.warn({ code, ...fields }, msg);
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
    if (this.app !== null) throw new PlankwatchError('PW_E_INTERNAL', 'HttpServer: routes and plugins must be added before start()');
  }
}
