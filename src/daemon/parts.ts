// Builders that turn the config into the daemon's stages. Each only constructs: the daemon starts
// them, in order, and stops them in reverse.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Classifier } from '../classify/index.js';
import { readSecret, type Config } from '../config/index.js';
import { PlankwatchError } from '../errors.js';
import { HttpServer, parseAllowedHosts, type HealthChecks, type Metrics } from '../http/index.js';
import { Ingest, type IngestHandlers } from '../ingest/index.js';
import { Finetuner, finetuneRoutes, type FinetunerOptions } from '../finetune/index.js';
import { EnsembleWatcher, ModelRegistry } from '../registry/index.js';
import type { Logger } from '../log.js';
import { NavStage, navView } from '../nav/index.js';
import { EmbeddedBroker, Publisher, type BrokerLogin, type PublisherProviders } from '../publish/index.js';
import { reviewRoutes, type ReviewStore } from '../review/index.js';
import { SegmentStage, type SegmentStageHooks } from '../segment/index.js';
import { Store, type FinetuneRepository, type OutboxRepository } from '../store/index.js';
import { SyncSender, syncSenderOptions, syncStoreHooks } from '../sync/index.js';
import type { Part } from '../types.js';
import { DiskSpace } from './disk-space.js';
import type { SystemdNotifier } from './notify.js';

/** The results database; with sync on, its writes queue the outbox rows in the same transactions. */
export function createStore(c: Config, log: Logger): Store {
  return new Store({ path: c.store.path, countsWindowMs: c.store.countsWindowS * 1000, logger: log, ...syncStoreHooks(c) });
}

/** A full disk under the database, archive or quarantine: reported once, probed, resumed. */
export function createDiskSpace(c: Config, onSpaceBack: () => void, log: Logger): DiskSpace {
  return new DiskSpace({
    folders: { store: path.dirname(path.resolve(c.store.path)), archive: path.resolve(c.ingest.archiveDir), quarantine: path.resolve(c.ingest.quarantineDir) },
    onSpaceBack,
    logger: log.child({ module: 'disk' }),
  });
}

/** The writable model store under classify.modelsDir, with the shipped versions of classify.baseModelsDir. */
export function createRegistry(c: Config): ModelRegistry {
  return new ModelRegistry({ modelsDir: c.classify.modelsDir, ensembleFile: c.classify.ensemble, baseModelsDir: c.classify.baseModelsDir });
}

/** Shipped member versions linked into the model store, a first ensemble copied from them. Throws PW_E_MODEL_LOAD. */
export function prepareModelStore(c: Config, registry: ModelRegistry, log: Logger): Part {
  return {
    name: 'model store',
    start: async () => {
      const prepared = await registry.prepare().catch((err: unknown) => {
        throw new PlankwatchError('PW_E_MODEL_LOAD', `classify.modelsDir: cannot prepare the model store ${c.classify.modelsDir}: ${(err as Error).message}`, { cause: err });
      });
      if (prepared.linked.length > 0 || prepared.seeded) {
        log.info({ module: 'registry', linked: prepared.linked, seeded: prepared.seeded, modelsDir: c.classify.modelsDir, baseModelsDir: c.classify.baseModelsDir }, 'model store prepared from the shipped models');
      }
    },
    stop: () => undefined,
  };
}

/** The inference stage: one wasm worker per core unless classify.workers says otherwise. */
export function createClassifier(c: Config, metrics: Metrics, log: Logger): Classifier {
  return new Classifier({
    ensembleFile: c.classify.ensemble,
    modelsDir: c.classify.modelsDir,
    backend: c.classify.backend,
    onnx: { providers: c.classify.onnxProviders, threads: c.classify.onnxThreads },
    onnxWorkers: c.classify.workers,
    workers: c.classify.workers > 0 ? c.classify.workers : Math.max(1, availableParallelism()),
    maxBatch: c.classify.maxBatch,
    maxWaitMs: c.classify.maxWaitMs,
    topK: c.classify.topK,
    camera: c.camera,
    logger: log.child({ module: 'classify' }),
    onBatch: (_size, ms) => metrics.batchLatency.observe(ms / 1000),
  });
}

/**
 * The embedded broker (publish.mqttUrl empty): only the publisher, with the broker's `ownerLogin`,
 * may publish; subscribers log in with publish.embeddedUsername when it is set.
 */
export function createEmbeddedBroker(c: Config, log: Logger): EmbeddedBroker {
  const p = c.publish;
  return new EmbeddedBroker({
    host: p.embeddedHost,
    port: p.embeddedPort,
    owner: { clientId: publisherClientId(c), prefix: p.topicPrefix, instrument: c.instrument.id },
    ...(p.embeddedUsername && p.embeddedPasswordFile
      ? { subscriber: { username: p.embeddedUsername, password: readSecret(p.embeddedPasswordFile, 'publish.embeddedPasswordFile') } }
      : {}),
    logger: log.child({ module: 'broker' }),
  });
}

/**
 * The MQTT publisher for the live topics, to `url`: the ship's broker with the publish.* credentials,
 * or the embedded one with its `login`.
 */
export function createPublisher(c: Config, url: string, providers: PublisherProviders, metrics: Metrics, log: Logger, login?: BrokerLogin): Publisher {
  const p = c.publish;
  return new Publisher({
    mqtt: login
      ? { url, ...login }
      : {
          url,
          ...(p.username ? { username: p.username } : {}),
          ...(p.passwordFile ? { password: readSecret(p.passwordFile, 'publish.passwordFile') } : {}),
          ...(p.caFile ? { caFile: p.caFile } : {}),
          ...(p.certFile ? { certFile: p.certFile } : {}),
          ...(p.keyFile ? { keyFile: p.keyFile } : {}),
          clientId: publisherClientId(c),
        },
    prefix: p.topicPrefix,
    instrument: c.instrument.id,
    countsMinIntervalMs: p.countsMinIntervalMs,
    statsIntervalMs: p.statsIntervalS * 1000,
    detections: p.detections,
    providers,
    onConnectionChange: (up) => metrics.mqttConnected.set(up ? 1 : 0),
    logger: log.child({ module: 'publish' }),
  });
}

/** The sender of the outbox to the shore broker (sync.enabled). Throws PW_E_CONFIG_INVALID. */
export function createSyncSender(c: Config, outbox: OutboxRepository, log: Logger): SyncSender {
  return new SyncSender(syncSenderOptions(c, outbox, log.child({ module: 'sync' })));
}

/** Watches classify.ensemble: a version promoted by `plankwatch models` is swapped in live. */
export function createEnsembleWatcher(c: Config, initialVersion: string, swap: () => Promise<void>, log: Logger): EnsembleWatcher {
  return new EnsembleWatcher({
    file: c.classify.ensemble,
    intervalMs: c.finetune.pollEnsembleMs,
    initialVersion,
    onChange: async (e) => {
      log.info({ ensemble: e.version }, `ensemble file changed to ${e.version}: swapping`);
      await swap();
    },
    onError: (err) => log.error({ err, code: 'PW_E_MODEL_LOAD' }, 'could not switch to the changed ensemble file; the active ensemble stays'),
  });
}

export interface FinetunerDeps {
  repository: FinetuneRepository;
  review: ReviewStore;
  registry: ModelRegistry;
  /** A candidate passed the gate and is now classify.ensemble. */
  onPromoted: FinetunerOptions['onPromoted'];
}

/** Fine-tuning on the reviewed labels, with the images found in the watch folder or the archive. */
export function createFinetuner(c: Config, deps: FinetunerDeps, log: Logger): Finetuner {
  return new Finetuner({
    config: c.finetune,
    repository: deps.repository,
    review: deps.review,
    registry: deps.registry,
    images: { watchDir: c.ingest.watchDir, archiveDir: c.ingest.archiveDir },
    camera: c.camera,
    onPromoted: deps.onPromoted,
    logger: log.child({ module: 'finetune' }),
  });
}

/** systemd hears `READY=1` with `status` once every part is up, and `STOPPING=1` first at stop. */
export function systemdReady(notifier: SystemdNotifier, status: string): Part {
  return { name: 'systemd', start: () => notifier.ready(status), stop: () => notifier.stopping() };
}

export interface HttpDeps {
  health: () => HealthChecks;
  metrics: Metrics;
  review: ReviewStore;
  store: Store;
  finetuner: Finetuner;
}

/** /health, /metrics, the review page and its API, and the fine-tuning API. */
export function createHttpServer(c: Config, deps: HttpDeps, log: Logger): HttpServer {
  const token = c.http.tokenFile ? readSecret(c.http.tokenFile, 'http.tokenFile') : undefined;
  const http = new HttpServer({
    host: c.http.host,
    port: c.http.port,
    ...(token !== undefined ? { token } : {}),
    allowedHosts: parseAllowedHosts(c.http.allowedHosts).hosts,
    health: deps.health,
    metrics: deps.metrics,
    logger: log.child({ module: 'http' }),
  });
  if (c.review.enabled) {
    http.register(
      reviewRoutes({
        review: deps.review,
        counts: deps.store,
        countsWindowMs: c.store.countsWindowS * 1000,
        images: { watchDir: c.ingest.watchDir, archiveDir: c.ingest.archiveDir },
        page: { pageSize: c.review.pageSize, enlargedPx: c.review.enlargedPx, chartHours: c.review.chartHours, chartRefreshS: c.review.chartRefreshS },
        ...(c.ingest.mode === 'frames' ? { cameraFrames: deps.store.cameraFrameRepository() } : {}),
        ...(c.nav.enabled ? { nav: navView(deps.store.navRepository(), { windowMs: c.store.countsWindowS * 1000, binM: c.nav.concentrations.depthBinM }) } : {}),
        // The login form and the bearer header guard one secret: one budget of wrong tries.
        ...(token !== undefined ? { auth: { token, sessionMs: c.review.sessionHours * 3_600_000, throttle: http.authThrottle } } : {}),
        logger: log.child({ module: 'review' }),
      }),
    );
  }
  http.register(finetuneRoutes(deps.finetuner, log.child({ module: 'finetune' })));
  return http;
}

/** ingest.mode "frames": camera frames cut into ROIs, written under ingest.archiveDir. */
export function createSegmentStage(c: Config, store: Store, hooks: SegmentStageHooks, log: Logger): SegmentStage {
  const s = c.segment;
  return new SegmentStage({
    settings: {
      polarity: c.camera.polarity,
      background: s.background,
      backgroundFrames: s.backgroundFrames,
      localObjectPx: s.localObjectPx,
      threshold: s.threshold,
      closePx: s.closePx,
      mergePx: s.mergePx,
      minAreaPx: s.minAreaPx,
      maxAreaPx: s.maxAreaPx,
      dropBorder: s.dropBorder,
      marginPx: s.marginPx,
      maxRois: s.maxRois,
    },
    pixelSizeUm: c.camera.pixelSizeUm,
    frameVolumeL: s.frameVolumeL,
    maxPixels: c.ingest.maxPixels,
    roiRoot: c.ingest.archiveDir,
    repository: store.cameraFrameRepository(),
    hooks,
    logger: log.child({ module: 'segment' }),
  });
}

/** The watch folder, with the store answering which paths are already done. */
export function createIngest(c: Config, store: Store, handlers: Omit<IngestHandlers, 'isKnown'>, log: Logger): Ingest {
  return new Ingest(
    {
      watchDir: c.ingest.watchDir,
      archiveDir: c.ingest.archiveDir,
      quarantineDir: c.ingest.quarantineDir,
      stableMs: c.ingest.stableMs,
      rescanIntervalMs: c.ingest.rescanIntervalS * 1000,
      maxPending: c.ingest.maxPending,
      onProcessed: c.ingest.onProcessed,
      usePolling: c.ingest.usePolling,
      // Navigation sidecars (<image>.json, nav.sidecar.folderFile) lie beside the images: not images.
      ...(c.nav.enabled ? { tempSuffixes: ['.tmp', '.part', '.json', ...(c.nav.sidecar.folderFile ? [c.nav.sidecar.folderFile] : [])] } : {}),
      logger: log,
    },
    {
      ...handlers,
      isKnown: (relPath, size, mtimeMs) =>
        store.sourceOutcome(relPath, size, mtimeMs) ?? (c.ingest.mode === 'frames' ? store.cameraFrameRepository().sourceOutcome(relPath, size, mtimeMs) : null),
    },
  );
}

/** The navigation and environment stage (nav.enabled): its messages go out through the publisher. */
export function createNavStage(c: Config, store: Store, publisher: Publisher | undefined, metrics: Metrics, log: Logger): NavStage {
  return new NavStage({
    config: c.nav,
    instrument: c.instrument.id,
    countsWindowMs: c.store.countsWindowS * 1000,
    repository: store.navRepository(),
    logger: log,
    ...(publisher
      ? {
          publish: {
            concentrations: (payload) => publisher.publishJson('concentrations', payload, { qos: 1, retain: false }),
            profile: (payload) => publisher.publishJson('profile', payload, { qos: 1, retain: true }),
            position: (payload) => publisher.publishJson('position', payload, { qos: 0, retain: true }),
          },
        }
      : {}),
    onSentence: (outcome, source) => {
      metrics.navSentences.inc(1, { outcome });
      if (outcome === 'bad') metrics.navBadSentences.inc(1, { source });
    },
  });
}

function publisherClientId(c: Config): string {
  return `plankwatch-${c.instrument.id}`;
}
