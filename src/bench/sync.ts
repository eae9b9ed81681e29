// Sync benchmark: results through a 64 kbit/s, 600 ms round-trip link (fault-injecting proxy) to a
// real Mosquitto and a shore ingester. Reports ROI records per second, bytes per ROI on the wire
// (MQTT, and TCP payload through the proxy) and the compression ratio. Needs `mosquitto` installed.
import { createHash } from 'node:crypto';
import type { Store } from '../store/store.js';
import { SyncSender } from '../sync/sender.js';
import type { ClassifiedFrame } from '../types.js';
import { openSyncRig } from './sync-rig.js';

export interface BenchSyncOptions {
  /** ROIs queued before the link opens (default 3000). */
  rois?: number;
  /** Link throughput, bytes per second each way (default 8000 = 64 kbit/s). */
  bytesPerSecond?: number;
  /** One-way latency (default 300 ms). */
  latencyMs?: number;
  log?: (line: string) => void;
}

const CLASSES = ['copepod_calanoid', 'chaetognath_other', 'detritus_other', 'diatom_chain_string', 'appendicularian_s_shape', 'protist_other', 'shrimp_like_other', 'siphonophore_calycophoran_abylidae'];

/** A classified ROI shaped like the daemon's: top-5, three members. */
export function roi(i: number, at: number): ClassifiedFrame {
  const sha256 = createHash('sha256').update(`bench/${i}`).digest('hex');
  const r = (k: number): number => ((i * 7919 + k * 104_729) % 1000) / 1000;
  const label = CLASSES[i % CLASSES.length]!;
  const p = 0.35 + 0.6 * r(1);
  const topK = [{ label, probability: p }, ...[1, 2, 3, 4].map((k) => ({ label: CLASSES[(i + k) % CLASSES.length]!, probability: ((1 - p) * r(k + 1)) / 2 }))];
  return {
    frame: {
      file: { path: '', relPath: `cast-${Math.floor(i / 1000)}/${String(i).padStart(7, '0')}.jpg`, sha256, bytes: 2000 + Math.floor(6000 * r(2)), arrivedAt: at - 120 },
      width: 20 + Math.floor(200 * r(3)),
      height: 20 + Math.floor(150 * r(4)),
      area: 100 + Math.floor(9000 * r(5)),
      format: 'jpeg',
      inputs: new Map(),
    },
    prediction: {
      label,
      probability: p,
      margin: p - (topK[1]?.probability ?? 0),
      disagreement: r(6) < 0.7 ? 0 : 1 / 3,
      topK,
      members: ['pwnet-a', 'pwnet-b', 'pwnet-c'].map((m, k) => ({ member: m, version: 'v3', topK: [{ label, probability: Math.min(1, p + 0.05 * (k - 1)) }] })),
      ensembleVersion: '2026-11-28.1',
    },
    classifiedAt: at,
  };
}

/** The sender both sync benches run: the daemon's defaults, no byte cap (the proxy is the link). */
export function benchSenderOptions(store: Store, instrument: string, url: string, logger: ConstructorParameters<typeof SyncSender>[0]['logger']): ConstructorParameters<typeof SyncSender>[0] {
  return {
    outbox: store.outboxRepository(),
    instrument,
    link: { url, clientId: 'bench-ship', keepaliveS: 30 },
    topicPrefix: 'plankwatch-sync',
    bytesPerSecond: 0,
    dailyBytes: 0,
    maxBatchBytes: 16_384,
    maxBatchRecords: 500,
    maxInFlight: 4,
    compression: 'brotli',
    countsHoldMs: 10_000,
    resendAfterMs: 120_000,
    ackTimeoutMs: 120_000,
    thumbnails: null,
    logger,
  };
}

export async function benchSync(options: BenchSyncOptions = {}): Promise<Record<string, number | string>> {
  const rois = options.rois ?? 3000;
  const rate = options.bytesPerSecond ?? 8000;
  const latency = options.latencyMs ?? 300;
  const log = options.log ?? (() => undefined);
  const rig = await openSyncRig('sync', { latencyMs: latency, bytesPerSecond: rate });
  if ('skipped' in rig) return rig;
  const { store, ctx, proxy, logger } = rig;
  try {
    const t0 = Date.now() - rois * 31; // about 32 ROIs/s, as the NDSB camera averaged
    for (let i = 0; i < rois; i += 64) {
      const batch: ClassifiedFrame[] = [];
      for (let j = i; j < Math.min(rois, i + 64); j++) batch.push(roi(j, t0 + j * 31));
      store.recordClassified(batch);
    }
    log(`sync: ${rois} ROIs queued; draining through ${(rate * 8) / 1000} kbit/s with a ${2 * latency} ms round trip`);
    const sender = new SyncSender(benchSenderOptions(store, ctx.instrument, proxy.url, logger));
    const started = Date.now();
    await sender.start();
    rig.defer(() => sender.stop());
    const deadline = started + 15 * 60_000;
    for (;;) {
      const s = sender.status();
      if (s.queued.records === 0) break;
      if (Date.now() > deadline) throw new Error('sync bench did not drain in 15 minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
    const seconds = (Date.now() - started) / 1000;
    const s = sender.status();
    return {
      link: `${(rate * 8) / 1000} kbit/s, ${2 * latency} ms round trip`,
      rois,
      seconds: Math.round(seconds * 10) / 10,
      roisPerSecond: Math.round((rois / seconds) * 10) / 10,
      mqttBytesPerRoi: Math.round(s.bytesPerRoi ?? 0),
      tcpBytesPerRoiUp: Math.round(proxy.stats.bytesUp / rois),
      compressionRatio: Math.round((s.compressionRatio ?? 0) * 10) / 10,
      jsonBytesPerRoi: Math.round(s.rawBytes / s.ackedRecords),
      batches: s.ackedBatches,
    };
  } finally {
    await rig.close();
  }
}
