// The one place that builds the stages, connects them, and owns start and stop.
import path from 'node:path';
import type { Classifier } from '../classify/classifier.js';
import type { Config } from '../config/config.js';
import { PlankwatchError, isPlankwatchError } from '../errors.js';
import type { HealthChecks, HttpServer } from '../http/server.js';
import { Metrics } from '../http/metrics.js';
import type { Ingest } from '../ingest/ingest.js';
import { Finetuner } from '../learn/finetune/finetuner.js';
import { ModelRegistry } from '../learn/registry/registry.js';
import { EnsembleWatcher } from '../learn/registry/watch.js';
import type { Logger } from '../log.js';
import type { BrokerLogin } from '../publish/embedded-broker.js';
import type { Publisher } from '../publish/publisher.js';
import type { CountsWindow, ModelInfo, PipelineStats, PublisherProviders } from '../publish/types.js';
import { ReviewStore } from '../review/review-store.js';
import { PublishLog } from '../store/publish-log.js';
import { Store, type WindowCounts } from '../store/store.js';
import { SyncSender } from '../sync/sender.js';
import { syncLabelHook, syncSenderOptions, syncStoreHooks } from '../sync/stage.js';
import type { ClassifiedFrame, IncomingFile } from '../types.js';
import { DiskSpace } from './disk-space.js';
import { SystemdNotifier } from './notify.js';
import { Pipeline, type Outcome } from './pipeline.js';
import { createClassifier, createEmbeddedBroker, createHttpServer, createIngest, createPublisher } from './parts.js';
import { ProgressWatchdog } from './watchdog.js';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  env: NodeJS.ProcessEnv;
}

/** Since this start: framesSeen for the stats topic, the rest as the watchdog's sign of progress. */
interface Counters {
  framesSeen: number;
  classified: number;
  duplicates: number;
  quarantined: number;
}

/** A stage with a lifetime, as the daemon starts and stops it. */
interface Part {
  name: string;
  stop(): Promise<void> | void;
}

export class Daemon {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly metrics = new Metrics();
  private readonly counters: Counters = { framesSeen: 0, classified: 0, duplicates: 0, quarantined: 0 };
  private readonly started: Part[] = [];
  private store: Store | undefined;
  private disk: DiskSpace | undefined;
  private publishLog: PublishLog | undefined;
  private review: ReviewStore | undefined;
  private classifier: Classifier | undefined;
  private pipeline: Pipeline | undefined;
  private ingest: Ingest | undefined;
  private publisher: Publisher | undefined;
  private sync: SyncSender | undefined;
  private http: HttpServer | undefined;
  private watchdog: ProgressWatchdog | undefined;
  private finetuner: Finetuner | undefined;
  private ensembleWatcher: EnsembleWatcher | undefined;
  private modelInfo: ModelInfo | null = null;
  private backend = 'none';
  private lastWindowStart = 0;
  private readonly handling = new Set<Promise<void>>();

  constructor(options: DaemonOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.env = options.env;
  }

  /** Start every stage, upstream last: nothing is taken from the watch folder until all can take it. */
  async start(): Promise<void> {
    const c = this.config;
    const notifier = new SystemdNotifier({ env: this.env, logger: this.log.child({ module: 'systemd' }) });

    const store = new Store({ path: c.store.path, countsWindowMs: c.store.countsWindowS * 1000, logger: this.log, ...syncStoreHooks(c) });
    store.open();
    this.store = store;
    this.started.push({ name: 'store', stop: () => store.close() });
    this.publishLog = new PublishLog(store.database, c.store.countsWindowS * 1000);
    // Classified, duplicates and quarantined are read from the database at each scrape: the figures
    // `plankwatch status` and the MQTT stats topic show, across restarts.
    this.metrics.onCollect(() => this.metrics.setTotals(store.totals()));
    // A full disk under the database, archive or quarantine: reported once, probed, resumed.
    const disk = new DiskSpace({
      folders: { store: path.dirname(path.resolve(c.store.path)), archive: path.resolve(c.ingest.archiveDir), quarantine: path.resolve(c.ingest.quarantineDir) },
      onSpaceBack: () => void this.ingest?.rescan(),
      logger: this.log.child({ module: 'disk' }),
    });
    this.disk = disk;
    this.started.push({ name: 'disk space', stop: () => disk.stop() });
    this.metrics.onCollect(() => this.metrics.setDiskSpace(disk.isFull(), disk.freeBytes()));
    this.review = new ReviewStore({ db: store.database, knownClasses: () => this.knownClasses() });
    // Label changes travel ashore: queued in the outbox inside the label's own transaction.
    const queueLabel = syncLabelHook(c);
    this.review.onLabelChanged((record, db) => queueLabel(db, { sha256: record.sha256, state: record.status, label: record.label, by: record.user, at: record.at }));

    // The writable model store: shipped member versions linked in, a first ensemble copied from them.
    const registry = new ModelRegistry({ modelsDir: c.classify.modelsDir, ensembleFile: c.classify.ensemble, baseModelsDir: c.classify.baseModelsDir });
    const prepared = await registry.prepare().catch((err: unknown) => {
      throw new PlankwatchError('PW_E_MODEL_LOAD', `classify.modelsDir: cannot prepare the model store ${c.classify.modelsDir}: ${(err as Error).message}`, { cause: err });
    });
    if (prepared.linked.length > 0 || prepared.seeded) {
      this.log.info({ module: 'registry', linked: prepared.linked, seeded: prepared.seeded, modelsDir: c.classify.modelsDir, baseModelsDir: c.classify.baseModelsDir }, 'model store prepared from the shipped models');
    }

    const classifier = createClassifier(c, this.metrics, this.log);
    const model = await classifier.start();
    this.classifier = classifier;
    this.started.push({ name: 'classify', stop: () => classifier.stop() });
    this.backend = model.backend;
    this.modelInfo = model;
    this.metrics.setBackend(model.backend);
    this.metrics.setModelVersion(model.ensembleVersion);
    this.log.info({ backend: model.backend, ensemble: model.ensembleVersion, members: model.members.map((m) => `${m.name}@${m.version}`) }, `inference backend: ${model.backend}`);

    this.pipeline = new Pipeline({
      store,
      classifier,
      maxPixels: c.ingest.maxPixels,
      flushMs: c.store.flushMs,
      maxWriteBatch: 256,
      storeFull: () => disk.isFull('store'),
      logger: this.log.child({ module: 'pipeline' }),
      hooks: {
        settled: (file, outcome, detail) => this.onSettled(file, outcome, detail),
        stored: (frames) => this.onStored(frames),
        failed: (file, err) => this.onFailed(file, err),
      },
    });

    let mqttUrl = c.publish.mqttUrl;
    let brokerLogin: BrokerLogin | undefined;
    if (!mqttUrl) {
      const broker = createEmbeddedBroker(c, this.log);
      await broker.start();
      this.started.push({ name: 'broker', stop: () => broker.stop() });
      mqttUrl = broker.url;
      brokerLogin = broker.ownerLogin;
    }
    const publisher = createPublisher(c, mqttUrl, this.providers(), this.metrics, this.log, brokerLogin);
    await publisher.start();
    this.publisher = publisher;
    this.started.push({ name: 'publish', stop: () => publisher.stop() });
    if (c.sync.enabled) {
      const sync = new SyncSender(syncSenderOptions(c, store.database, this.log.child({ module: 'sync' })));
      await sync.start();
      this.sync = sync;
      this.started.push({ name: 'sync', stop: () => sync.stop() });
    }
    const windowTimer = setInterval(() => this.checkWindowClosed(), 1000);
    windowTimer.unref();
    this.started.push({ name: 'window timer', stop: () => clearInterval(windowTimer) });

    // Fine-tuning and model versions: promotions made here or by `plankwatch models` are swapped in live.
    const ensembleWatcher = new EnsembleWatcher({
      file: c.classify.ensemble,
      intervalMs: c.finetune.pollEnsembleMs,
      initialVersion: model.ensembleVersion,
      onChange: async (e) => {
        this.log.info({ ensemble: e.version }, `ensemble file changed to ${e.version}: swapping`);
        await this.swapEnsemble();
      },
      onError: (err) => this.log.error({ err, code: 'PW_E_MODEL_LOAD' }, 'could not switch to the changed ensemble file; the active ensemble stays'),
    });
    await ensembleWatcher.start();
    this.ensembleWatcher = ensembleWatcher;
    this.started.push({ name: 'ensemble watcher', stop: () => ensembleWatcher.stop() });
    const finetuner = new Finetuner({
      config: c.finetune,
      db: store.database,
      review: this.review,
      registry,
      images: { watchDir: c.ingest.watchDir, archiveDir: c.ingest.archiveDir },
      onPromoted: async (e) => {
        ensembleWatcher.acknowledge(e.version);
        await this.swapEnsemble();
      },
      logger: this.log.child({ module: 'finetune' }),
    });
    this.finetuner = finetuner;

    if (c.http.enabled) {
      const http = createHttpServer(c, { health: () => this.health(), metrics: this.metrics, review: this.review, store, finetuner }, this.log);
      await http.start();
      this.http = http;
      this.started.push({ name: 'http', stop: () => http.stop() });
    }

    const pipeline = this.pipeline;
    const ingest = createIngest(
      c,
      store,
      {
        onFile: (file) => this.onFile(file),
        onReject: (r) => {
          this.counters.framesSeen++;
          this.metrics.framesSeen.inc();
          const file: IncomingFile = { path: r.path, relPath: r.relPath, sha256: r.sha256 ?? '', bytes: r.bytes ?? 0, arrivedAt: r.arrivedAt, ...(r.mtimeMs !== null ? { mtimeMs: r.mtimeMs } : {}) };
          try {
            pipeline.reject(file, r.code, r.detail);
          } catch (err) {
            this.onFailed(file, err); // not stored (a full disk): the file stays for the next scan
          }
        },
        onMoveFailed: (err, folder) => disk.report(err, folder),
      },
      this.log,
    );
    await ingest.start();
    this.ingest = ingest;
    this.started.push({ name: 'ingest', stop: () => ingest.stop() });

    finetuner.start();
    this.started.push({ name: 'finetune', stop: () => finetuner.stop() });

    const watchdogMs = notifier.watchdogIntervalMs();
    if (watchdogMs) {
      this.watchdog = new ProgressWatchdog({
        intervalMs: watchdogMs,
        progress: () => this.counters.classified + this.counters.duplicates + this.counters.quarantined,
        busy: () => (this.pipeline?.depth ?? 0) > 0,
        ping: () => notifier.watchdog(),
        logger: this.log.child({ module: 'watchdog' }),
      });
      this.watchdog.start();
      const wd = this.watchdog;
      this.started.push({ name: 'watchdog', stop: () => wd.stop() });
    }

    await notifier.ready(`classifying ${path.resolve(c.ingest.watchDir)} with ${model.ensembleVersion} on ${model.backend}`);
    this.started.push({ name: 'systemd', stop: () => notifier.stopping() });
    this.log.info(
      {
        backend: model.backend,
        ensemble: model.ensembleVersion,
        watchDir: path.resolve(c.ingest.watchDir),
        database: path.resolve(c.store.path),
        mqtt: mqttUrl,
        http: this.http?.url ?? null,
      },
      'plankwatch ready',
    );
  }

  /**
   * Stop in reverse order of start: ingest first (no new files), then wait for the files in flight,
   * store them, then publish `offline`, then the rest. Returns false if any step failed.
   */
  async stop(): Promise<boolean> {
    let ok = true;
    const timeoutMs = this.config.daemon.shutdownTimeoutS * 1000;
    const parts = this.started.splice(0).reverse();
    for (const part of parts) {
      try {
        await part.stop();
        if (part.name === 'ingest') await this.drain(timeoutMs);
      } catch (err) {
        ok = false;
        this.log.error({ err, part: part.name }, `stopping ${part.name} failed`);
      }
    }
    return ok;
  }

  /** Wait for the files in flight, then write the last batch. */
  private async drain(timeoutMs: number): Promise<void> {
    const all = Promise.all([...this.handling]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const result = await Promise.race([all.then(() => 'done' as const), timeout]);
    clearTimeout(timer);
    this.pipeline?.flush();
    if (result === 'timeout') this.log.warn({ inFlight: this.handling.size }, 'stop: files still in flight after daemon.shutdownTimeoutS; they stay in the watch folder and are processed at the next start');
  }

  private onFile(file: IncomingFile): Promise<void> {
    this.counters.framesSeen++;
    this.metrics.framesSeen.inc();
    const work = this.pipeline!.handle(file);
    this.handling.add(work);
    this.metrics.queueDepth.set(this.pipeline!.depth);
    void work.finally(() => {
      this.handling.delete(work);
      this.metrics.queueDepth.set(this.pipeline?.depth ?? 0);
    });
    return work;
  }

  private onSettled(file: IncomingFile, outcome: Outcome, detail?: { code: string; rejectId: number }): void {
    if (outcome === 'duplicate') {
      this.counters.duplicates++;
    } else if (outcome === 'quarantined') {
      this.counters.quarantined++;
    }
    const ingest = this.ingest;
    if (!ingest) return;
    void ingest.finish(file, outcome).then((result) => {
      if (outcome !== 'quarantined' || !detail || !result.dest) return;
      try {
        this.store?.setQuarantinedPath(detail.rejectId, result.dest);
      } catch (err) {
        // The reject is stored; only where it was moved is not (the file is in quarantine).
        if (!this.disk?.report(err, 'store')) this.log.error({ err, code: isPlankwatchError(err) ? err.code : 'PW_E_DB', file: file.relPath }, 'could not note where a rejected file was moved');
      }
    });
  }

  private onStored(frames: ClassifiedFrame[]): void {
    const now = Date.now();
    this.counters.classified += frames.length;
    for (const f of frames) {
      this.metrics.arrivalToStored.observe((now - f.frame.file.arrivedAt) / 1000);
      if (this.config.publish.detections) {
        this.publisher?.publishDetection({
          sha256: f.frame.file.sha256,
          file: f.frame.file.relPath,
          label: f.prediction.label,
          probability: f.prediction.probability,
          atMs: f.classifiedAt,
        });
      }
    }
    this.checkWindowClosed();
    this.publisher?.notifyCounts();
    this.sync?.wake();
  }

  private onFailed(file: IncomingFile, err: unknown): void {
    // Not the image's fault (a worker or the database failed): the file stays in the watch folder
    // and is tried again by the next rescan. A full disk is reported once, not per file.
    if (this.disk?.report(err, 'store')) {
      this.log.debug({ file: file.relPath }, `the database's disk is full: ${file.relPath} waits in the watch folder`);
    } else {
      const code = isPlankwatchError(err) ? err.code : 'PW_E_INTERNAL';
      this.log.error({ err, code, file: file.relPath }, `could not process ${file.relPath}; it stays in the watch folder and will be retried`);
    }
    this.ingest?.release(file);
  }

  private checkWindowClosed(): void {
    const windowMs = this.config.store.countsWindowS * 1000;
    const start = Math.floor(Date.now() / windowMs) * windowMs;
    if (this.lastWindowStart !== 0 && start !== this.lastWindowStart) this.publisher?.notifyWindowClosed();
    this.lastWindowStart = start;
  }

  private providers(): PublisherProviders {
    const asPublished = (w: WindowCounts): CountsWindow => ({
      startMs: w.windowStart,
      endMs: w.windowEnd,
      total: w.total,
      counts: w.counts,
      ensembleVersion: this.modelInfo?.ensembleVersion ?? 'none',
    });
    return {
      getCurrentCounts: () => asPublished(this.publishLog!.current(Date.now())),
      getUnpublishedWindows: (limit) => this.publishLog!.unpublished(Date.now(), limit).map(asPublished),
      markWindowPublished: (startMs) => this.publishLog!.markPublished(startMs, Date.now()),
      nextSeq: () => this.publishLog!.nextSeq(),
      getModelInfo: () => this.modelInfo,
      getStats: (): PipelineStats => {
        // All time, from the database, as `plankwatch status` and /metrics show them; framesSeen
        // counts the files picked up since this start.
        const t = this.store!.totals();
        return { framesSeen: this.counters.framesSeen, classified: t.classified, duplicates: t.duplicates, quarantined: t.quarantined.total, queueDepth: this.pipeline?.depth ?? 0, backend: this.backend };
      },
    };
  }

  /** Load classify.ensemble into the running classifier (between batches), then announce it. */
  private async swapEnsemble(): Promise<void> {
    const classifier = this.classifier;
    if (!classifier) return;
    const info = await classifier.swapEnsemble(this.config.classify.ensemble);
    this.modelInfo = info;
    this.metrics.setModelVersion(info.ensembleVersion);
    this.publisher?.notifyModel();
    this.log.info({ ensemble: info.ensembleVersion, members: info.members.map((m) => `${m.name}@${m.version}`), classes: info.classes.length }, `ensemble ${info.ensembleVersion} active`);
  }

  /** The active ensemble's classes (none while no ensemble is loaded). */
  private knownClasses(): string[] {
    try {
      return this.classifier?.modelInfo().classes ?? [];
    } catch {
      return [];
    }
  }

  private health(): HealthChecks {
    return {
      store: this.disk?.isFull('store') ? { ok: false, detail: 'PW_E_DISK_FULL: the database cannot be written' } : { ok: this.store !== undefined },
      ...(this.disk ? { disk: this.disk.health() } : {}),
      classify: { ok: this.classifier !== undefined, detail: this.backend },
      mqtt: { ok: true, detail: this.publisher?.connected ? 'connected' : 'disconnected (results are stored and published when it returns)' },
      ...(this.sync ? { sync: { ok: true, detail: this.sync.state.connected ? 'connected to the shore broker' : 'link down (records stay queued)' } } : {}),
    };
  }
}
