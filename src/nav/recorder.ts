// Samples held in memory and written in one transaction every nav.flushMs (prepared statements, no
// await inside). After each write: volume rows get their depth, and ROIs whose times the new samples
// cover are tagged again. Reports the capture-time windows whose concentrations changed.
import type { EnvSampleInsert, NavFixInsert, NavRepository, VolumeInsert } from '../store/index.js';
import { valueAt, type Tolerances } from './geo.js';
import type { Tagger } from './tagger.js';

export interface FlushResult {
  fixes: number;
  env: number;
  volumes: number;
  retagged: number;
  /** Capture times touched (retagged ROIs, new volume): for the concentration windows. */
  touched: number[];
}

export class SampleRecorder {
  private fixes: NavFixInsert[] = [];
  private env: EnvSampleInsert[] = [];
  private volumes: VolumeInsert[] = [];

  constructor(
    private readonly repo: NavRepository,
    private readonly tagger: Tagger,
    private readonly tol: Tolerances,
  ) {}

  get pending(): number {
    return this.fixes.length + this.env.length + this.volumes.length;
  }

  addFix(row: NavFixInsert): void {
    this.fixes.push(row);
  }
  addEnv(row: EnvSampleInsert): void {
    this.env.push(row);
  }
  addVolume(row: VolumeInsert): void {
    this.volumes.push(row);
  }

  /** Writes what is held, then fills volume depths and retags. Throws what the store throws (the samples are kept for the next try). */
  flush(now: number): FlushResult {
    const [fixes, env, volumes] = [this.fixes, this.env, this.volumes];
    const result: FlushResult = { fixes: fixes.length, env: env.length, volumes: volumes.length, retagged: 0, touched: [] };
    if (fixes.length + env.length + volumes.length === 0) return result;
    this.repo.transaction(() => {
      this.repo.insertFixes(fixes);
      this.repo.insertEnvSamples(env);
      this.repo.insertVolumes(volumes);
    });
    this.fixes = [];
    this.env = [];
    this.volumes = [];
    const times = [...fixes, ...env, ...volumes].map((r) => r.tMs);
    let lo = Infinity;
    let hi = -Infinity;
    for (const t of times) {
      lo = Math.min(lo, t);
      hi = Math.max(hi, t);
    }
    // Anything whose bracket the new samples can change lies within the longer tolerance of them.
    const reach = Math.max(this.tol.maxGapMs, this.tol.maxHoldMs);
    const depths = this.repo
      .volumesWithoutDepth(lo - reach, hi + reach, 10_000)
      .map((v) => ({ id: v.id, t: v.t, d: valueAt(v.t, this.repo.envBracket('depth_m', v.t), this.tol) }))
      .filter((v) => v.d.value !== null);
    this.repo.setVolumeDepths(depths.map((v) => ({ id: v.id, depthM: v.d.value! })));
    const retagged = this.tagger.retag(lo - reach, hi + reach, now);
    result.retagged = retagged.length;
    result.touched = [...volumes.map((v) => v.tMs), ...depths.map((v) => v.t), ...retagged.map((r) => r.tMs)];
    return result;
  }
}
