// Segmentation benchmark: the daemon as a child process with ingest.mode "frames", whole camera
// frames (2048 × 2048, 8-bit, uncompressed TIFF) composed from real NDSB ROIs written into its watch
// folder at once. A camera frame counts as done only once every ROI cut from it is classified and
// stored, so frames/s here is the rate the daemon sustains with classification keeping up. The
// segmentation thread is first timed alone on the same frames, for comparison.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { silentLogger } from '../log.js';
import { DEFAULT_SEGMENT_SETTINGS, SegmentThread } from '../segment/index.js';
import { compose, loadRois, roiFiles } from './compose-frames.js';
import { freePort } from './ports.js';

export interface SegmentBenchOptions {
  repoRoot: string;
  /** Class folders of ROI images (the NDSB layout). */
  dataDir: string;
  frames: number;
  roisPerFrame: number;
  width: number;
  height: number;
  /** segment.background of the daemon. */
  background: 'running' | 'columns' | 'local';
  log: (line: string) => void;
}

export interface SegmentBenchResult {
  backend: string;
  frameSize: string;
  frames: number;
  roisPerFrame: number;
  roisStored: number;
  seconds: number;
  framesPerSecond: number;
  roisPerSecond: number;
  /** Median time in the segmentation thread per camera frame, in the daemon. */
  segmentMsMedian: number;
  /** The segmentation thread alone (no daemon, no classification) on the same frames: frames/s and median ms. */
  segmentOnlyFramesPerSecond: number;
  segmentOnlyMsMedian: number;
  peakRssMiB: number;
  /**
   * CPU time (user + system, every thread: main, segmentation, inference, image codecs) the daemon
   * spent from the first frame written to the last one done, per camera frame and per ROI stored.
   */
  cpuSeconds: number;
  cpuMsPerFrame: number;
  cpuMsPerRoi: number;
  /** Of the daemon's CPU time, the share of the two cores it had (1 = one core busy throughout). */
  coresBusy: number;
  /** The segmentation thread alone: CPU time per camera frame. */
  segmentOnlyCpuMsPerFrame: number;
}

export async function benchSegment(o: SegmentBenchOptions): Promise<SegmentBenchResult> {
  const rois = await loadRois(roiFiles(o.dataDir, 400));
  const root = mkdtempSync(path.join(tmpdir(), 'pw-bench-segment-'));
  const staging = path.join(root, 'staging');
  const incoming = path.join(root, 'incoming');
  mkdirSync(staging, { recursive: true });
  mkdirSync(incoming, { recursive: true });
  o.log(`composing ${o.frames} frames of ${o.width}x${o.height} with ${o.roisPerFrame} ROIs each`);
  const scene = { width: o.width, height: o.height, level: 215, polarity: 'bright-field' as const, lightSeed: 7, vignette: 0.3, gradient: 0.1, banding: 0.03, noise: 3 };
  const alone = new SegmentThread({ ...DEFAULT_SEGMENT_SETTINGS, background: o.background }, silentLogger());
  await alone.start();
  const aloneMs: number[] = [];
  let aloneSeconds = 0;
  let aloneCpuMs = 0;
  for (let i = 0; i < o.frames; i++) {
    const frame = compose({ ...scene, seed: 9000 + i }, rois, o.roisPerFrame);
    const gray = frame.gray.slice();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    aloneMs.push((await alone.segment(gray, o.width, o.height)).ms);
    const cpu = process.cpuUsage(cpu0);
    aloneCpuMs += (cpu.user + cpu.system) / 1000;
    aloneSeconds += (performance.now() - t0) / 1000;
    // 8-bit gray, as the camera writes it (without toColourspace sharp would write 3 channels, 12 MB).
    await sharp(Buffer.from(frame.gray.buffer, frame.gray.byteOffset, frame.gray.length), { raw: { width: o.width, height: o.height, channels: 1 } })
      .toColourspace('b-w')
      .tiff({ compression: 'none' })
      .toFile(path.join(staging, `${String(i).padStart(5, '0')}.tif`));
  }
  await alone.stop();
  aloneMs.sort((a, b) => a - b);
  const segmentOnly = { framesPerSecond: round(o.frames / aloneSeconds), msMedian: round(aloneMs[Math.floor(aloneMs.length / 2)] ?? NaN), cpuMsPerFrame: round(aloneCpuMs / o.frames) };
  o.log(`segmentation thread alone: ${segmentOnly.framesPerSecond} frames/s, ${segmentOnly.msMedian} ms a frame (median), ${segmentOnly.cpuMsPerFrame} ms CPU a frame`);
  const db = path.join(root, 'bench.db');
  const config = path.join(root, 'bench.yaml');
  writeFileSync(
    config,
    stringify({
      instrument: { id: 'bench' },
      ingest: { watchDir: incoming, mode: 'frames', onProcessed: 'delete', archiveDir: path.join(root, 'archive'), quarantineDir: path.join(root, 'quarantine') },
      segment: { background: o.background },
      classify: { ensemble: path.join(o.repoRoot, 'models/ensemble.json'), modelsDir: path.join(o.repoRoot, 'models') },
      store: { path: db, countsWindowS: 60 },
      publish: { embeddedPort: await freePort() },
      http: { enabled: false },
      finetune: { enabled: false },
    }),
  );
  const child = spawn(process.execPath, [path.join(o.repoRoot, 'bin/plankwatch.js'), 'run', '--config', config], {
    cwd: o.repoRoot,
    env: { ...process.env, PLANKWATCH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const backend = await ready(child);
    o.log(`daemon ready: ${backend}; writing ${o.frames} frames at once`);
    const started = Date.now();
    const cpuBefore = cpuMs(child.pid!);
    for (let i = 0; i < o.frames; i++) {
      const name = `${String(i).padStart(5, '0')}.tif`;
      renameSync(path.join(staging, name), path.join(incoming, name));
    }
    const deadline = started + 30 * 60_000;
    let done = 0;
    while (done < o.frames) {
      if (Date.now() > deadline) throw new Error(`only ${done} of ${o.frames} frames done in 30 minutes`);
      await new Promise((r) => setTimeout(r, 200));
      done = query(db, 'SELECT count(*) AS n FROM camera_frames WHERE done_at IS NOT NULL');
    }
    const seconds = (Date.now() - started) / 1000;
    const cpuSeconds = (cpuMs(child.pid!) - cpuBefore) / 1000;
    const roisStored = query(db, 'SELECT count(*) AS n FROM camera_frame_rois r JOIN frames f ON f.sha256 = r.sha256');
    const segmentMs = all(db, 'SELECT segment_ms AS v FROM camera_frames ORDER BY segment_ms').map((r) => r.v);
    const result: SegmentBenchResult = {
      backend,
      frameSize: `${o.width}x${o.height}`,
      frames: o.frames,
      roisPerFrame: o.roisPerFrame,
      roisStored,
      seconds: round(seconds),
      framesPerSecond: round(o.frames / seconds),
      roisPerSecond: round(roisStored / seconds),
      segmentMsMedian: round(segmentMs[Math.floor(segmentMs.length / 2)] ?? NaN),
      segmentOnlyFramesPerSecond: segmentOnly.framesPerSecond,
      segmentOnlyMsMedian: segmentOnly.msMedian,
      peakRssMiB: peakRss(child.pid!),
      cpuSeconds: round(cpuSeconds),
      cpuMsPerFrame: round((cpuSeconds * 1000) / o.frames),
      cpuMsPerRoi: round((cpuSeconds * 1000) / Math.max(1, roisStored)),
      coresBusy: Math.round((cpuSeconds / seconds) * 100) / 100,
      segmentOnlyCpuMsPerFrame: segmentOnly.cpuMsPerFrame,
    };
    o.log(`${o.frames} frames (${roisStored} ROIs) in ${result.seconds} s: ${result.framesPerSecond} frames/s, ${result.roisPerSecond} ROIs/s; segmentation ${result.segmentMsMedian} ms a frame (median)`);
    o.log(`daemon CPU ${result.cpuSeconds} s (${result.coresBusy} cores busy): ${result.cpuMsPerFrame} ms a frame, ${result.cpuMsPerRoi} ms an ROI (all threads; the segmentation alone: ${segmentOnly.cpuMsPerFrame} ms a frame)`);
    return result;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
}

function ready(child: ReturnType<typeof spawn>): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.includes('"plankwatch ready"')) {
          const parsed = JSON.parse(line) as { backend?: string };
          resolve(parsed.backend ?? 'unknown');
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`the daemon exited (${code}) before it was ready`)));
  });
}

function query(file: string, sql: string): number {
  return (all(file, sql.replace('AS n', 'AS v'))[0]?.v ?? 0);
}

function all(file: string, sql: string): { v: number }[] {
  let conn: Database.Database | undefined;
  try {
    conn = new Database(file, { readonly: true, fileMustExist: true });
    return conn.prepare(sql).all() as { v: number }[];
  } catch {
    return []; // not created yet
  } finally {
    conn?.close();
  }
}

/** CPU time (user + system) of every thread of process `pid` so far, ms (Linux: /proc, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** The process's peak resident memory (VmHWM), MiB. */
function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024) : NaN;
  } catch {
    return NaN;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
