// `plankwatch shore` as a part with start()/stop(): the shore database, the ingester and the
// status endpoint, built from the config's `shore` section.
import { hostname } from 'node:os';
import type { Config } from '../config/config.js';
import { readSecret } from '../config/secret.js';
import { parseAllowedHosts } from '../http/origin.js';
import { HttpServer } from '../http/server.js';
import type { Logger } from '../log.js';
import { readStatusKey } from '../sync/stage.js';
import { ShoreIngester } from './ingester.js';
import { PostgresShoreDriver } from './postgres.js';
import { SqliteShoreDriver } from './sqlite.js';
import { ShoreStore } from './store.js';

export interface ShoreServiceOptions {
  config: Config;
  logger: Logger;
}

export class ShoreService {
  private readonly options: ShoreServiceOptions;
  private readonly log: Logger;
  private store: ShoreStore | undefined;
  private ingester: ShoreIngester | undefined;
  private http: HttpServer | undefined;

  constructor(options: ShoreServiceOptions) {
    this.options = options;
    this.log = options.logger.child({ module: 'shore' });
  }

  /** The status endpoint's URL (after start), or null when it is off. */
  get url(): string | null {
    return this.http?.url ?? null;
  }

  get storeHandle(): ShoreStore | undefined {
    return this.store;
  }

  async start(): Promise<void> {
    const c = this.options.config.shore;
    const driver =
      c.database === 'postgres'
        ? new PostgresShoreDriver({
            url: c.postgresUrl,
            ...(c.postgresPasswordFile ? { password: readSecret(c.postgresPasswordFile, 'shore.postgresPasswordFile') } : {}),
            onPoolError: (err) => this.log.warn({ err, code: 'PW_E_SHORE_DB' }, 'PostgreSQL connection error'),
          })
        : new SqliteShoreDriver({ path: c.sqlitePath });
    const store = new ShoreStore(driver);
    await store.open();
    this.store = store;

    const ingester = new ShoreIngester({
      store,
      link: {
        url: c.url,
        clientId: c.clientId || `plankwatch-shore-${hostname()}`,
        ...(c.username ? { username: c.username } : {}),
        ...(c.passwordFile ? { password: readSecret(c.passwordFile, 'shore.passwordFile') } : {}),
        ...(c.caFile ? { caFile: c.caFile } : {}),
        ...(c.certFile ? { certFile: c.certFile } : {}),
        ...(c.keyFile ? { keyFile: c.keyFile } : {}),
      },
      group: c.group,
      topicPrefix: c.topicPrefix,
      statusIntervalMs: c.statusIntervalS * 1000,
      statusKey: c.statusKeyFile ? readStatusKey(c.statusKeyFile, 'shore.statusKeyFile') : null,
      logger: this.log,
    });
    await ingester.start();
    this.ingester = ingester;

    const http = new HttpServer({
      host: c.httpHost,
      port: c.httpPort,
      ...(c.httpTokenFile ? { token: readSecret(c.httpTokenFile, 'shore.httpTokenFile') } : {}),
      allowedHosts: parseAllowedHosts(c.httpAllowedHosts).hosts,
      allowedHostsKey: 'shore.httpAllowedHosts',
      health: () => ({
        mqtt: { ok: ingester.stats.connected, detail: ingester.stats.connected ? 'connected' : 'broker unreachable' },
        database: { ok: true, detail: store.dialect },
      }),
      metrics: { expose: () => this.metricsText() },
      logger: this.log.child({ module: 'shore-http' }),
    });
    http.route('GET', '/status', async () => ({ ingester: { ...ingester.stats, subscription: ingester.subscription }, instruments: await ingester.gapReports() }));
    http.route('GET', '/gaps/:instrument', async (request) => store.gaps((request.params as { instrument: string }).instrument, 10_000));
    await http.start();
    this.http = http;
    this.log.info({ subscription: ingester.subscription, database: c.database, http: http.url }, 'shore ingester ready');
  }

  /** Stop in reverse order; returns false if a step failed. */
  async stop(): Promise<boolean> {
    let ok = true;
    for (const [name, step] of [
      ['http', () => this.http?.stop()],
      ['ingester', () => this.ingester?.stop()],
      ['database', () => this.store?.close()],
    ] as const) {
      try {
        await step();
      } catch (err) {
        ok = false;
        this.log.error({ err, part: name }, `stopping ${name} failed`);
      }
    }
    return ok;
  }

  private metricsText(): string {
    const s = this.ingester?.stats;
    if (!s) return '';
    return [
      '# TYPE plankwatch_shore_batches_total counter',
      `plankwatch_shore_batches_total ${s.batches}`,
      '# TYPE plankwatch_shore_records_total counter',
      `plankwatch_shore_records_total ${s.records}`,
      '# TYPE plankwatch_shore_duplicates_total counter',
      `plankwatch_shore_duplicates_total ${s.duplicates}`,
      '# TYPE plankwatch_shore_bad_batches_total counter',
      `plankwatch_shore_bad_batches_total ${s.badBatches}`,
      '# TYPE plankwatch_shore_mqtt_connected gauge',
      `plankwatch_shore_mqtt_connected ${s.connected ? 1 : 0}`,
      '',
    ].join('\n');
  }
}
