// The one place that builds the stages, connects them, and owns start and stop.
import path from 'node:path';
import type { Classifier } from '../classify/index.js';
import type { Config } from '../config/index.js';
import { isPlankwatchError } from '../errors.js';
import { Metrics, type HealthChecks, type HttpServer } from '../http/index.js';
import type { Ingest, IngestReject } from '../ingest/index.js';
import type { SegmentStage } from '../segment/index.js';
import type { GrayImage } from '../preprocess/index.js';
import type { Logger } from '../log.js';
import type { NavStage } from '../nav/index.js';
import type { CountsWindow, ModelInfo, PipelineStats, Publisher, PublisherProviders } from '../publish/index.js';
import { ReviewStore } from '../review/index.js';
import type { PublishLog, Store, WindowCounts } from '../store/index.js';
import { syncLabelHook, type SyncSender } from '../sync/index.js';
import type { ClassifiedFrame, IncomingFile, Part, RejectCode } from '../types.js';
import type { DiskSpace } from './disk-space.js';
import { SystemdNotifier } from './notify.js';
import { Pipeline, type Outcome } from './pipeline.js';
import {
  createClassifier,
  createDiskSpace,
  createEmbeddedBroker,
  createEnsembleWatcher,
  createFinetuner,
  createHttpServer,
  createIngest,
  createNavStage,
  createPublisher,
  createRegistry,
  createSegmentStage,
  createStore,
  createSyncSender,
  prepareModelStore,
  systemdReady,
} from './parts.js';
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

export class Daemon {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly metrics = new Metrics();
  private readonly counters: Counters = { framesSeen: 0, classified: 0, duplicates: 0, quarantined: 0 };
  /** The parts started, in order: stop() takes them in reverse. */
  private readonly started: Part[] = [];
  /** Moves of settled files still under way (awaited by the disposals part at stop). */
  private readonly disposals = new Set<Promise<void>>();
  private store: Store | undefined;
  private disk: DiskSpace | undefined;
  private publishLog: PublishLog | undefined;
  private classifier: Classifier | undefined;
  private pipeline: Pipeline | undefined;
  private ingest: Ingest | undefined;
  /** ingest.mode "frames": whole camera frames are cut into ROIs before the pipeline. */
  private segment: SegmentStage | undefined;
  private publisher: Publisher | undefined;
  private sync: SyncSender | undefined;
  private nav: NavStage | undefined;
  private http: HttpServer | undefined;
  private modelInfo: ModelInfo | null = null;
  private backend = 'none';
  private lastWindowStart = 0;

  constructor(options: DaemonOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.env = options.env;
  }

  /**
   * Start the parts in order, upstream last: nothing is taken from the watch folder until every
   * stage after it can take it. A part that fails to start throws; stop() then stops those before it.
   */
  async start(): Promise<void> {
    const c = this.config;
    const notifier = new SystemdNotifier({ env: this.env, logger: this.log.child({ module: 'systemd' }) });
    const store = (this.store = await this.begin(createStore(c, this.log)));
    this.publishLog = store.publishLog();
    const disk = (this.disk = await this.begin(createDiskSpace(c, () => void this.ingest?.rescan(), this.log)));
    this.collectMetrics(store, disk);
    const review = this.openReview(store);
    const registry = createRegistry(c);
    await this.begin(prepareModelStore(c, registry, this.log));
    const classifier = (this.classifier = await this.begin(createClassifier(c, this.metrics, this.log)));
    const model = this.useModel(classifier.modelInfo());
    const broker = c.publish.mqttUrl ? undefined : await this.begin(createEmbeddedBroker(c, this.log));
    const mqttUrl = broker?.url ?? c.publish.mqttUrl;
    this.publisher = await this.begin(createPublisher(c, mqttUrl, this.providers(), this.metrics, this.log, broker?.ownerLogin));
    if (c.sync.enabled) this.sync = await this.begin(createSyncSender(c, store.outboxRepository(), this.log));
    await this.begin(this.windowTimer());
    if (c.nav.enabled) this.nav = await this.begin(createNavStage(c, store, this.publisher, this.metrics, this.log));
    // Fine-tuning and model versions: promotions made here or by `plankwatch models` are swapped in live.
    const ensembleWatcher = await this.begin(createEnsembleWatcher(c, model.ensembleVersion, () => this.swapEnsemble(), this.log));
    const onPromoted = async (e: { version: string }): Promise<void> => {
      ensembleWatcher.acknowledge(e.version);
      await this.swapEnsemble();
    };
    const finetuner = createFinetuner(c, { repository: store.finetuneRepository(), review, registry, onPromoted }, this.log);
    if (c.http.enabled) this.http = await this.begin(createHttpServer(c, { health: () => this.health(), metrics: this.metrics, review, store, finetuner }, this.log));
    await this.begin(this.disposalsPart());
    this.pipeline = await this.begin(this.createPipeline(store, classifier, disk));
    if (c.ingest.mode === 'frames') this.segment = await this.begin(this.createSegmentStage(store));
    this.ingest = await this.begin(
      createIngest(c, store, { onFile: (file) => this.onFile(file), onReject: (r) => this.onReject(r), onMoveFailed: (err, folder) => disk.report(err, folder) }, this.log),
    );
    await this.begin(finetuner);
    const watchdogMs = notifier.watchdogIntervalMs();
    if (watchdogMs) await this.begin(this.watchdog(watchdogMs, notifier));
    await this.begin(systemdReady(notifier, `classifying ${path.resolve(c.ingest.watchDir)} with ${model.ensembleVersion} on ${model.backend}`));
    this.log.info(
      { backend: model.backend, ensemble: model.ensembleVersion, watchDir: path.resolve(c.ingest.watchDir), database: path.resolve(c.store.path), mqtt: mqttUrl, http: this.http?.url ?? null },
      'plankwatch ready',
    );
  }

  /**
   * Stop the parts in reverse order of start, each in its own try/catch: ingest stops taking files,
   * the pipeline stores those in flight, publish says `offline`, the store closes last. Then the
   * logger is flushed. Returns false if any step failed.
   */
  async stop(): Promise<boolean> {
    let ok = true;
    for (const part of this.started.splice(0).reverse()) {
      try {
        await part.stop();
      } catch (err) {
        ok = false;
        this.log.error({ err, part: part.name }, `stopping ${part.name} failed`);
      }
    }
    try {
      this.log.flush();
    } catch {
      ok = false; // nowhere left to say so: the exit code does
    }
    return ok;
  }

  /** Start a part; from then on stop() stops it. */
  private async begin<P extends Part>(part: P): Promise<P> {
    await part.start();
    this.started.push(part);
    return part;
  }

  /**
   * Classified, duplicates and quarantined are read from the database at each scrape: the figures
   * `plankwatch status` and the MQTT stats topic show, across restarts. Likewise the disk's state.
   */
  private collectMetrics(store: Store, disk: DiskSpace): void {
    this.metrics.onCollect(() => this.metrics.setTotals(store.totals()));
    this.metrics.onCollect(() => this.metrics.setDiskSpace(disk.isFull(), disk.freeBytes()));
    if (this.config.ingest.mode === 'frames') this.metrics.onCollect(() => this.metrics.setCameraFrameTotals(store.cameraFrameRepository().totals()));
  }

  /** The review stage; label changes travel ashore, queued in the outbox inside the label's own transaction. */
  private openReview(store: Store): ReviewStore {
    const review = new ReviewStore({ repository: store.reviewRepository(), knownClasses: () => this.knownClasses() });
    const queueLabel = syncLabelHook(this.config, store.outboxRepository());
    review.onLabelChanged((record) => queueLabel({ sha256: record.sha256, state: record.status, label: record.label, by: record.user, at: record.at }));
    return review;
  }

  /** The ensemble the classifier started with: its backend and version in the metrics and the log. */
  private useModel(model: ModelInfo): ModelInfo {
    this.backend = model.backend;
    this.modelInfo = model;
    this.metrics.setBackend(model.backend);
    this.metrics.setModelVersion(model.ensembleVersion);
    this.log.info({ backend: model.backend, ensemble: model.ensembleVersion, members: model.members.map((m) => `${m.name}@${m.version}`) }, `inference backend: ${model.backend}`);
    return model;
  }

  /** A closed counts window is announced even when no frame arrives to notice it. */
  private windowTimer(): Part {
    let timer: NodeJS.Timeout | undefined;
    return {
      name: 'window timer',
      start: () => {
        timer = setInterval(() => this.checkWindowClosed(), 1000);
        timer.unref();
      },
      stop: () => clearInterval(timer),
    };
  }

  private createPipeline(store: Store, classifier: Classifier, disk: DiskSpace): Pipeline {
    return new Pipeline({
      store,
      classifier,
      maxPixels: this.config.ingest.maxPixels,
      camera: this.config.camera,
      flushMs: this.config.store.flushMs,
      maxWriteBatch: 256,
      storeFull: () => disk.isFull('store'),
      drainTimeoutMs: this.config.daemon.shutdownTimeoutS * 1000,
      logger: this.log.child({ module: 'pipeline' }),
      hooks: {
        settled: (file, outcome, detail) => this.onSettled(file, outcome, detail),
        stored: (frames) => this.onStored(frames),
        failed: (file, err) => this.onFailed(file, err),
      },
    });
  }

  /** systemd's watchdog: pinged while the pipeline is idle or settles files. */
  private watchdog(intervalMs: number, notifier: SystemdNotifier): ProgressWatchdog {
    return new ProgressWatchdog({
      intervalMs,
      progress: () => this.counters.classified + this.counters.duplicates + this.counters.quarantined,
      busy: () => (this.pipeline?.depth ?? 0) > 0,
      ping: () => notifier.watchdog(),
      logger: this.log.child({ module: 'watchdog' }),
    });
  }

  private onFile(file: IncomingFile): Promise<void> {
    this.counters.framesSeen++;
    this.metrics.framesSeen.inc();
    if (this.segment) return this.segment.handle(file);
    this.nav?.noteFile(file);
    const work = this.pipeline!.handle(file);
    this.metrics.queueDepth.set(this.pipeline!.depth);
    void work.finally(() => this.metrics.queueDepth.set(this.pipeline?.depth ?? 0));
    return work;
  }

  /** A file ingest will not hand over (empty, a link, unreadable): recorded and quarantined. */
  private onReject(r: IngestReject): void {
    this.counters.framesSeen++;
    this.metrics.framesSeen.inc();
    const file: IncomingFile = { path: r.path, relPath: r.relPath, sha256: r.sha256 ?? '', bytes: r.bytes ?? 0, arrivedAt: r.arrivedAt, ...(r.mtimeMs !== null ? { mtimeMs: r.mtimeMs } : {}) };
    try {
      this.pipeline!.reject(file, r.code, r.detail);
    } catch (err) {
      this.onFailed(file, err); // not stored (a full disk): the file stays for the next scan
    }
  }

  private onSettled(file: IncomingFile, outcome: Outcome, detail?: { code: string; rejectId: number }): void {
    if (outcome === 'duplicate') {
      this.counters.duplicates++;
    } else if (outcome === 'quarantined') {
      this.counters.quarantined++;
    }
    const ingest = this.ingest;
    // An ROI cut from a camera frame stays where the segment stage wrote it (under the archive).
    if (!ingest || this.segment?.isRoi(file)) return;
    const disposal = ingest
      .finish(file, outcome)
      .then((result) => {
        if (outcome !== 'quarantined' || !detail || !result.dest) return;
        try {
          this.store?.setQuarantinedPath(detail.rejectId, result.dest);
        } catch (err) {
          // The reject is stored; only where it was moved is not (the file is in quarantine).
          if (!this.disk?.report(err, 'store')) this.log.error({ err, code: isPlankwatchError(err) ? err.code : 'PW_E_DB', file: file.relPath }, 'could not note where a rejected file was moved');
        }
      })
      .catch((err: unknown) => {
        // The result is stored; the file stays where it is and the next start disposes of it.
        this.log.error({ err, code: isPlankwatchError(err) ? err.code : 'PW_E_MOVE', file: file.relPath }, `could not move ${file.relPath} after storing it; it is moved at the next start`);
      });
    this.disposals.add(disposal);
    void disposal.finally(() => this.disposals.delete(disposal));
  }

  /**
   * Started just before the pipeline, so stopped just after its drain: waits for the moves of the
   * files the drain settled, before the store closes and the process exits.
   */
  private disposalsPart(): Part {
    return {
      name: 'disposals',
      start: () => undefined,
      stop: async () => {
        while (this.disposals.size > 0) await Promise.allSettled([...this.disposals]);
      },
    };
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
    this.nav?.tagStored(frames.map((f) => f.frame.file));
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
    if (!this.segment?.isRoi(file)) this.ingest?.release(file);
  }

  /** Camera frames cut into ROIs; each ROI goes down the pipeline like one the camera cut. */
  private createSegmentStage(store: Store): SegmentStage {
    const hooks = {
      classify: (roi: IncomingFile, decoded?: GrayImage) => this.pipeline!.handle(roi, decoded),
      segmented: (_file: IncomingFile, rois: number) => this.metrics.roisPerCameraFrame.observe(rois),
      roiStored: (sha256: string) => store.hasFrame(sha256),
      reject: (file: IncomingFile, code: RejectCode, detail: string) => this.pipeline!.reject(file, code, detail),
      settled: (file: IncomingFile, outcome: 'processed' | 'duplicate') => this.onSettled(file, outcome),
      failed: (file: IncomingFile, err: unknown) => this.onFailed(file, err),
    };
    return createSegmentStage(this.config, store, hooks, this.log);
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
      ...(this.nav ? { nav: this.nav.health() } : {}),
    };
  }
}
