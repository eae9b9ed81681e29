// End-to-end pipeline benchmark: the daemon as a child process, real NDSB images written into its
// watch folder, results read back from its database. Measures sustained ROIs/s, latency from the
// file's arrival to its stored result at a fixed offered load, and the process's resident memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { freePort } from './ports.js';

export interface PipelineBenchOptions {
  repoRoot: string;
  /** Folder of class folders with JPEGs (the NDSB layout). */
  dataDir: string;
  /** Images for the throughput phase (written as fast as possible). */
  burst: number;
  /** Offered load of the latency phase, ROIs/s, and its length. */
  offeredRate: number;
  offeredSeconds: number;
  /** Optional soak: offered load and minutes, sampling RSS. */
  soakRate: number;
  soakMinutes: number;
  /** classify.* settings for the daemon (e.g. { backend: 'wasm' }); the ensemble and models folder are set here. */
  classify?: Record<string, unknown>;
  log: (line: string) => void;
}

export interface PipelineBenchResult {
  /** The inference backend the daemon reported, and its execution provider and threads. */
  backend: string;
  images: number;
  burstRoisPerSecond: number;
  /** Every burst round's ROIs/s when the bench ran several (burstRoisPerSecond is their median). */
  bursts?: number[];
  offeredRate: number;
  achievedRate: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  peakRssMiB: number;
  soak?: { minutes: number; rate: number; rssFirstMiB: number; rssLastMiB: number; rssSlopeMiBPerMin: number; peakRssMiB: number };
}

/** Every image path under dataDir, in a fixed order. */
export function listImages(dataDir: string): string[] {
  const out: string[] = [];
  for (const cls of readdirSync(dataDir).sort()) {
    const dir = path.join(dataDir, cls);
    if (!existsSync(dir) || cls.includes('.')) continue;
    for (const name of readdirSync(dir).sort()) if (/\.(jpe?g|png|tiff?)$/i.test(name)) out.push(path.join(dir, name));
  }
  return out;
}

/**
 * Distinct content for the n-th write of a source JPEG: a comment segment (FF FE) with a counter,
 * inserted after the start-of-image marker, so the file is still a complete, valid JPEG.
 */
function distinctBytes(source: Buffer, n: number): Buffer {
  const segment = Buffer.alloc(12);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(10, 2);
  segment.writeBigUInt64BE(BigInt(n), 4);
  return Buffer.concat([source.subarray(0, 2), segment, source.subarray(2)]);
}

export async function benchPipeline(o: PipelineBenchOptions): Promise<PipelineBenchResult> {
  const sources = listImages(o.dataDir);
  if (sources.length === 0) throw new Error(`no images under ${o.dataDir}`);
  const cache = new Map<string, Buffer>();
  const bytesOf = (i: number): Buffer => {
    const p = sources[(i * 7919) % sources.length]!;
    let b = cache.get(p);
    if (!b) {
      b = readFileSync(p);
      cache.set(p, b);
    }
    return distinctBytes(b, i);
  };

  const root = mkdtempSync(path.join(tmpdir(), 'pw-bench-'));
  const incoming = path.join(root, 'incoming');
  mkdirSync(incoming, { recursive: true });
  const db = path.join(root, 'bench.db');
  const config = path.join(root, 'bench.yaml');
  writeFileSync(
    config,
    stringify({
      instrument: { id: 'bench' },
      ingest: { watchDir: incoming, onProcessed: 'delete', archiveDir: path.join(root, 'archive'), quarantineDir: path.join(root, 'quarantine'), maxPending: 1024 },
      classify: { ...o.classify, ensemble: path.join(o.repoRoot, 'models/ensemble.json'), modelsDir: path.join(o.repoRoot, 'models') },
      store: { path: db, countsWindowS: 60 },
      publish: { embeddedPort: await freePort() },
      http: { enabled: false },
      log: { level: 'warn' },
    }),
  );
  // PLANKWATCH_BENCH_NODE_ARGS passes node options to the daemon, e.g. "--cpu-prof --cpu-prof-dir=prof".
  const nodeArgs = (process.env.PLANKWATCH_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(o.repoRoot, 'bin/plankwatch.js'), 'run', '--config', config], {
    cwd: o.repoRoot,
    env: { ...process.env, PLANKWATCH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const backend = await waitReady(child);
  o.log(`daemon ready: ${backend}`);
  const rss = new RssSampler(child.pid!);
  rss.start();
  let written = 0;
  const writeTimes = new Map<string, number>();
  const write = (i: number): void => {
    const name = `${String(i).padStart(7, '0')}.jpg`;
    const tmp = path.join(incoming, `.${name}.part`);
    writeFileSync(tmp, bytesOf(i));
    renameSync(tmp, path.join(incoming, name));
    writeTimes.set(name, Date.now());
    written++;
  };

  try {
    // Phase 1: a burst, as fast as the disk takes it; sustained rate = images / time to store all.
    // (burst 0: skipped, NaN.)
    let burstRate = NaN;
    if (o.burst > 0) {
      o.log(`burst: writing ${o.burst} images`);
      const t0 = Date.now();
      for (let i = 0; i < o.burst; i++) write(i);
      await waitForRows(db, o.burst, 600_000);
      const burstSeconds = (Date.now() - t0) / 1000;
      burstRate = o.burst / burstSeconds;
      o.log(`burst: ${o.burst} stored in ${burstSeconds.toFixed(1)} s = ${burstRate.toFixed(1)} ROIs/s`);
    }

    // Phase 2: fixed offered load; latency = stored_at - time the file appeared (rename done).
    // (offeredSeconds 0: skipped, NaN.)
    const base = written;
    const n = o.offeredRate * o.offeredSeconds;
    let offeredElapsed = NaN;
    if (n > 0) {
      o.log(`latency: ${o.offeredRate} ROIs/s offered for ${o.offeredSeconds} s`);
      const started = Date.now();
      await paced(n, o.offeredRate, (k) => write(base + k));
      offeredElapsed = (Date.now() - started) / 1000;
      await waitForRows(db, base + n, 300_000);
    }
    const latencies = readLatencies(db, writeTimes, base, base + n);
    const result: PipelineBenchResult = {
      backend,
      images: sources.length,
      burstRoisPerSecond: round(burstRate),
      offeredRate: o.offeredRate,
      achievedRate: round(n / offeredElapsed),
      latencyP50Ms: percentile(latencies, 50),
      latencyP95Ms: percentile(latencies, 95),
      latencyP99Ms: percentile(latencies, 99),
      peakRssMiB: 0,
    };

    if (o.soakMinutes > 0) {
      o.log(`soak: ${o.soakRate} ROIs/s for ${o.soakMinutes} min`);
      const soakBase = written;
      const samples: { t: number; rss: number }[] = [];
      const soakStart = Date.now();
      const sampler = setInterval(() => samples.push({ t: (Date.now() - soakStart) / 60000, rss: rss.current() }), 5000);
      const total = Math.round(o.soakRate * o.soakMinutes * 60);
      await paced(total, o.soakRate, (k) => write(soakBase + k));
      clearInterval(sampler);
      await waitForRows(db, soakBase + total, 300_000);
      const firstMinute = samples.filter((s) => s.t >= 1 && s.t < 2).map((s) => s.rss);
      const lastMinute = samples.filter((s) => s.t >= o.soakMinutes - 1).map((s) => s.rss);
      result.soak = {
        minutes: o.soakMinutes,
        rate: o.soakRate,
        rssFirstMiB: round(mean(firstMinute)),
        rssLastMiB: round(mean(lastMinute)),
        rssSlopeMiBPerMin: round(slope(samples.filter((s) => s.t >= 1))),
        peakRssMiB: round(rss.peak),
      };
    }
    result.peakRssMiB = round(rss.peak);
    return result;
  } finally {
    rss.stop();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
}

function readLatencies(dbFile: string, writeTimes: Map<string, number>, from: number, to: number): number[] {
  const conn = new Database(dbFile, { readonly: true });
  try {
    const rows = conn.prepare('SELECT rel_path, stored_at FROM frames').all() as { rel_path: string; stored_at: number }[];
    const out: number[] = [];
    for (const r of rows) {
      const i = Number(r.rel_path.slice(0, 7));
      if (i < from || i >= to) continue;
      const t = writeTimes.get(r.rel_path);
      if (t !== undefined) out.push(r.stored_at - t);
    }
    return out.sort((a, b) => a - b);
  } finally {
    conn.close();
  }
}

async function paced(n: number, rate: number, fn: (k: number) => void): Promise<void> {
  const start = performance.now();
  for (let k = 0; k < n; k++) {
    const due = start + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    fn(k);
  }
}

async function waitForRows(dbFile: string, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let count = 0;
    if (existsSync(dbFile)) {
      const conn = new Database(dbFile, { readonly: true });
      count = (conn.prepare('SELECT COUNT(*) AS n FROM predictions').get() as { n: number }).n;
      conn.close();
    }
    if (count >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${count} of ${n} results stored after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves when the daemon logs that it is ready, with what its 'inference backend started' line says. */
function waitReady(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let backend = 'unknown';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const line = buffer.split('\n').find((l) => l.includes('inference backend started'));
      if (line && backend === 'unknown') {
        try {
          const l = JSON.parse(line) as { backend: string; provider?: string; threads?: number; intraOpThreads?: number };
          backend = l.provider ? `${l.backend} (${l.provider}, ${l.threads} x ${l.intraOpThreads} threads)` : `${l.backend} (${l.threads} threads)`;
        } catch {
          // not a whole line yet
        }
      }
      if (buffer.includes('"plankwatch ready"')) resolve(backend);
      if (buffer.length > 1_000_000) buffer = buffer.slice(-10_000);
    });
    child.once('exit', (code) => reject(new Error(`daemon exited (${code}) before it was ready:\n${buffer.slice(-3000)}`)));
  });
}

class RssSampler {
  private readonly pid: number;
  private timer: NodeJS.Timeout | undefined;
  peak = 0;

  constructor(pid: number) {
    this.pid = pid;
  }

  start(): void {
    this.timer = setInterval(() => this.current(), 500);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Resident set size in MiB (VmRSS), also tracking the peak. */
  current(): number {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const mib = kb / 1024;
      this.peak = Math.max(this.peak, mib);
      return mib;
    } catch {
      return 0;
    }
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Least-squares slope of rss over t (MiB per minute). */
function slope(samples: { t: number; rss: number }[]): number {
  if (samples.length < 2) return NaN;
  const mt = mean(samples.map((s) => s.t));
  const mr = mean(samples.map((s) => s.rss));
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.rss - mr);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
