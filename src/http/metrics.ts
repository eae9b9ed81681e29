// The daemon's Prometheus metrics, as typed fields: `metrics.framesClassified.inc(n)`.
import { Registry, type Counter, type Gauge, type Histogram } from './metrics-registry.js';

/** Seconds: one classify batch, from the first frame taken off the queue to the last prediction. */
const BATCH_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds: from the file being noticed to its result committed in the store. */
const ARRIVAL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

/** Every metric the daemon updates, registered in one registry that `/metrics` renders. */
export class Metrics {
  readonly registry = new Registry();

  readonly framesSeen: Counter = this.registry.counter({
    name: 'plankwatch_frames_seen_total',
    help: 'Image files found complete in the watch folder.',
  });
  readonly framesClassified: Counter = this.registry.counter({
    name: 'plankwatch_frames_classified_total',
    help: 'Frames classified and stored.',
  });
  readonly duplicates: Counter = this.registry.counter({
    name: 'plankwatch_duplicates_total',
    help: 'Frames skipped because a file with the same SHA-256 was already stored.',
  });
  readonly quarantined: Counter<'reason'> = this.registry.counter({
    name: 'plankwatch_quarantined_total',
    help: 'Files moved to quarantine, by error code.',
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

  /** The exposition text served at /metrics. */
  expose(): string {
    return this.registry.expose();
  }
}
