// Sync benchmark: results through a 64 kbit/s, 600 ms round-trip link (fault-injecting proxy) to a
// real Mosquitto and a shore ingester. Reports ROI records per second, bytes per ROI on the wire
// (MQTT, and TCP payload through the proxy) and the compression ratio. Needs `mosquitto` installed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../log.js';
import { ShoreIngester } from '../shore/ingester.js';
import { SqliteShoreDriver } from '../shore/sqlite.js';
import { ShoreStore } from '../shore/store.js';
import { Store } from '../store/store.js';
import { FaultProxy } from '../sync/fault-proxy.js';
import { enqueueClassified } from '../sync/outbox.js';
import { SyncSender } from '../sync/sender.js';
import type { ClassifiedFrame } from '../types.js';
import { freePort } from './ports.js';

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

export function mosquittoBinary(): string | undefined {
  for (const c of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) if (spawnSync(c, ['-h']).error === undefined) return c;
  return undefined;
}

export async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('mosquitto did not start');
}

export async function benchSync(options: BenchSyncOptions = {}): Promise<Record<string, number | string>> {
  const binary = mosquittoBinary();
  if (!binary) return { skipped: 'mosquitto is not installed (apt-get install mosquitto)' };
  const rois = options.rois ?? 3000;
  const rate = options.bytesPerSecond ?? 8000;
  const latency = options.latencyMs ?? 300;
  const log = options.log ?? (() => undefined);
  const dir = mkdtempSync(path.join(tmpdir(), 'pw-bench-sync-'));
  const port = await freePort();
  writeFileSync(path.join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\n`);
  const broker: ChildProcess = spawn(binary, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  const logger = silentLogger();
  const parts: (() => Promise<void> | void)[] = [() => void broker.kill('SIGKILL'), () => rmSync(dir, { recursive: true, force: true })];
  try {
    await waitPort(port);
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: port, latencyMs: latency, bytesPerSecond: rate });
    await proxy.start();
    parts.unshift(() => proxy.stop());

    const shoreStore = new ShoreStore(new SqliteShoreDriver({ path: path.join(dir, 'shore.db') }));
    await shoreStore.open();
    const ingester = new ShoreIngester({
      store: shoreStore,
      link: { url: `mqtt://127.0.0.1:${port}`, clientId: 'bench-shore' },
      group: 'bench',
      topicPrefix: 'plankwatch-sync',
      statusIntervalMs: 1000,
      logger,
    });
    await ingester.start();
    parts.unshift(async () => {
      await ingester.stop();
      await shoreStore.close();
    });

    const ctx = { instrument: 'bench-1', windowMs: 60_000 };
    const store = new Store({ path: path.join(dir, 'ship.db'), countsWindowMs: 60_000, logger, onRecordClassified: (outbox, stored) => enqueueClassified(outbox, ctx, stored) });
    store.open();
    parts.unshift(() => store.close());
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
    parts.unshift(() => sender.stop());
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
    for (const p of parts) {
      try {
        await p();
      } catch {
        // best effort
      }
    }
  }
}
