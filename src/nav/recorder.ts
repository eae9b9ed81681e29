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

/** The earliest and latest time of some rows, or null for none. */
function span(rows: readonly { tMs: number }[]): [number, number] | null {
  if (rows.length === 0) return null;
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of rows) {
    lo = Math.min(lo, r.tMs);
    hi = Math.max(hi, r.tMs);
  }
  return [lo, hi];
}

/** Samples held while the database cannot be written; past this, the oldest are dropped. */
const MAX_HELD = 200_000;

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

  /** Samples dropped because the database could not take them for too long (a full disk). */
  dropped = 0;

  addFix(row: NavFixInsert): void {
    this.hold(this.fixes, row);
  }
  addEnv(row: EnvSampleInsert): void {
    this.hold(this.env, row);
  }
  addVolume(row: VolumeInsert): void {
    this.hold(this.volumes, row);
  }

  private hold<T>(list: T[], row: T): void {
    if (list.length >= MAX_HELD) {
      list.shift();
      this.dropped++;
    }
    list.push(row);
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
    // Only what the new samples can change is looked at again: an ROI becomes interpolated only
    // with a sample within maxGap of it, a missing one held with a sample within maxHold; a volume
    // row gets its depth from a depth sample within maxHold, or is new.
    const gap = this.tol.maxGapMs;
    const hold = this.tol.maxHoldMs;
    const all = span([...fixes, ...env, ...volumes]);
    const depths = span(env.filter((e) => e.depthM != null));
    const fresh = span(volumes);
    const noDepth = [...(depths ? [[depths[0] - hold, depths[1] + hold]] : []), ...(fresh ? [fresh] : [])].flatMap(([lo, hi]) =>
      this.repo.volumesWithoutDepth(lo!, hi!, 10_000),
    );
    const filled = [...new Map(noDepth.map((v) => [v.id, v])).values()]
      .map((v) => ({ id: v.id, t: v.t, d: valueAt(v.t, this.repo.envBracket('depth_m', v.t), this.tol) }))
      .filter((v) => v.d.value !== null);
    this.repo.setVolumeDepths(filled.map((v) => ({ id: v.id, depthM: v.d.value! })));
    const retagged = all ? [...this.tagger.retag(all[0] - gap, all[1] + gap, now), ...this.tagger.retag(all[0] - hold, all[1] + hold, now, true)] : [];
    result.retagged = retagged.length;
    result.touched = [...volumes.map((v) => v.tMs), ...filled.map((v) => v.t), ...retagged.map((r) => r.tMs)];
    return result;
  }
}
