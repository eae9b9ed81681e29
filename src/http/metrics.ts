// The daemon's Prometheus metrics, as typed fields: `metrics.framesClassified.inc(n)`.
import { Registry, type Counter, type Gauge, type Histogram } from './metrics-registry.js';

/** Seconds: one classify batch, from the first frame taken off the queue to the last prediction. */
const BATCH_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** ROIs cut from one camera frame (segment.maxRois is 500 by default). */
const ROIS_PER_FRAME_BUCKETS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500];
/** Seconds: from the file being noticed to its result committed in the store. */
const ARRIVAL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

/** What the store has settled, all time (the store's StoreTotals). */
export interface SettledTotals {
  classified: number;
  duplicates: number;
  quarantined: { byCode: Record<string, number> };
}

/** Every metric the daemon updates, registered in one registry that `/metrics` renders. */
export class Metrics {
  readonly registry = new Registry();
  private readonly collectors: (() => void)[] = [];

  readonly framesSeen: Counter = this.registry.counter({
    name: 'plankwatch_frames_seen_total',
    help: 'Image files found complete in the watch folder.',
  });
  readonly framesClassified: Counter = this.registry.counter({
    name: 'plankwatch_frames_classified_total',
    help: 'Frames classified and stored, all time (from the database, as plankwatch status shows it).',
  });
  readonly duplicates: Counter = this.registry.counter({
    name: 'plankwatch_duplicates_total',
    help: 'Files not classified because their content (SHA-256) was already stored, all time (from the database).',
  });
  readonly quarantined: Counter<'reason'> = this.registry.counter({
    name: 'plankwatch_quarantined_total',
    help: 'Files moved to quarantine, by error code, all time (from the database).',
    labelNames: ['reason'],
  });
  readonly queueDepth: Gauge = this.registry.gauge({
    name: 'plankwatch_queue_depth',
    help: 'Frames waiting to be classified.',
  });
  readonly batchLatency: Histogram = this.registry.histogram({
    name: 'plankwatch_batch_latency_seconds',
    help: 'Time to classify one batch.',
    buckets: BATCH_BUCKETS,
  });
  readonly arrivalToStored: Histogram = this.registry.histogram({
    name: 'plankwatch_arrival_to_stored_seconds',
    help: 'Time from a file being noticed to its result being stored.',
    buckets: ARRIVAL_BUCKETS,
  });
  readonly backendInfo: Gauge<'backend'> = this.registry.gauge({
    name: 'plankwatch_backend_info',
    help: 'Inference backend in use (value always 1).',
    labelNames: ['backend'],
  });
  readonly modelInfo: Gauge<'version'> = this.registry.gauge({
    name: 'plankwatch_model_info',
    help: 'Active ensemble version (value always 1).',
    labelNames: ['version'],
  });
  readonly mqttConnected: Gauge = this.registry.gauge({
    name: 'plankwatch_mqtt_connected',
    help: '1 while connected to the MQTT broker, else 0.',
  });
  readonly diskFull: Gauge = this.registry.gauge({
    name: 'plankwatch_disk_full',
    help: '1 while a folder the daemon writes (database, archive, quarantine) is full (PW_E_DISK_FULL), else 0.',
  });
  readonly navSentences: Counter<'outcome'> = this.registry.counter({
    name: 'plankwatch_nav_sentences_total',
    help: 'Navigation and CTD lines read since the start, by outcome: ok (used), ignored (valid, not used), bad (dropped: PW_E_NAV_SENTENCE).',
    labelNames: ['outcome'],
  });
  readonly navBadSentences: Counter<'source'> = this.registry.counter({
    name: 'plankwatch_nav_bad_sentences_total',
    help: 'Navigation and CTD lines dropped since the start (bad checksum, cut short, unreadable field), by input.',
    labelNames: ['source'],
  });
  readonly cameraFrames: Counter<'outcome'> = this.registry.counter({
    name: 'plankwatch_camera_frames_total',
    help: 'Whole camera frames (ingest.mode "frames"), all time (from the database), by outcome: segmented (every ROI cut from it stored), duplicate, quarantined.',
    labelNames: ['outcome'],
  });
  readonly cameraFrameRois: Counter = this.registry.counter({
    name: 'plankwatch_camera_frame_rois_total',
    help: 'ROIs cut from camera frames, all time (from the database).',
  });
  readonly roisPerCameraFrame: Histogram = this.registry.histogram({
    name: 'plankwatch_camera_frame_rois',
    help: 'ROIs cut from each camera frame segmented since the start.',
    buckets: ROIS_PER_FRAME_BUCKETS,
  });
  readonly diskFreeBytes: Gauge<'folder'> = this.registry.gauge({
    name: 'plankwatch_disk_free_bytes',
    help: 'Bytes free for the daemon in the file system of each folder it writes: store (the database), archive, quarantine.',
    labelNames: ['folder'],
  });

  /** Sets `plankwatch_backend_info{backend}` to 1 for this backend only. */
  setBackend(backend: string): void {
    this.backendInfo.reset();
    this.backendInfo.set(1, { backend });
  }

  /** Sets `plankwatch_model_info{version}` to 1 for this ensemble version only. */
  setModelVersion(version: string): void {
    this.modelInfo.reset();
    this.modelInfo.set(1, { version });
  }

  /**
   * Runs `fn` before each exposition, to read values kept elsewhere (the database's totals, free
   * disk space). A collector that throws is skipped; the rest of the metrics are still served.
   */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /**
   * Brings the settled-file counters to the store's totals, which persist across restarts: the
   * figures plankwatch status and the MQTT stats topic show. Counters never go down.
   */
  setTotals(totals: SettledTotals): void {
    raise(this.framesClassified, totals.classified);
    raise(this.duplicates, totals.duplicates);
    for (const [reason, n] of Object.entries(totals.quarantined.byCode)) {
      const d = n - this.quarantined.get({ reason });
      if (d > 0) this.quarantined.inc(d, { reason });
    }
  }

  /** Brings the camera frame counters to the database's totals (counters never go down). */
  setCameraFrameTotals(totals: { done: number; duplicates: number; quarantined: number; rois: number }): void {
    for (const [outcome, n] of [['segmented', totals.done], ['duplicate', totals.duplicates], ['quarantined', totals.quarantined]] as const) {
      const d = n - this.cameraFrames.get({ outcome });
      if (d > 0) this.cameraFrames.inc(d, { outcome });
    }
    raise(this.cameraFrameRois, totals.rois);
  }

  /** Sets plankwatch_disk_full and plankwatch_disk_free_bytes{folder} (a folder whose space is unknown is left out). */
  setDiskSpace(full: boolean, free: readonly { folder: string; bytes: number | null }[]): void {
    this.diskFull.set(full ? 1 : 0);
    this.diskFreeBytes.reset();
    for (const f of free) if (f.bytes !== null) this.diskFreeBytes.set(f.bytes, { folder: f.folder });
  }

  /** The exposition text served at /metrics. */
  expose(): string {
    for (const fn of this.collectors) {
      try {
        fn();
      } catch {
        // A failed read (database busy or closing) leaves the last values; the scrape still answers.
      }
    }
    return this.registry.expose();
  }
}

function raise(counter: Counter, to: number): void {
  const d = to - counter.get();
  if (d > 0) counter.inc(d);
}
