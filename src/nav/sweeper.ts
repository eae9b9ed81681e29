// Swept volume: the camera images a slab of fovWidthM x depthOfFieldM moving through the water at
// the ship's speed; the volume sampled between two speed readings is that area times the distance
// run (the earlier speed held over the interval). Speed through water (VHW) is used when it comes,
// else speed over ground (nav.volume.speed). Readings more than maxGapMs apart sweep nothing: the
// volume of a gap is not known, and is not counted (concentrations stay unbiased).
import type { NavFixInsert, VolumeInsert } from '../store/index.js';

export const KNOT_MS = 1852 / 3600;

export interface SweeperOptions {
  fovWidthM: number;
  depthOfFieldM: number;
  speed: 'auto' | 'water' | 'ground';
  maxGapMs: number;
}

export class VolumeSweeper {
  private last: { t: number; ms: number } | undefined;
  private lastWaterAt = -Infinity;

  constructor(private readonly o: SweeperOptions) {}

  /** A fix or speed reading, in time order per input; returns the volume swept up to it, if any. */
  push(row: NavFixInsert): VolumeInsert | null {
    const water = row.stwKn ?? null;
    const ground = row.sogKn ?? null;
    if (water !== null) this.lastWaterAt = row.tMs;
    let kn: number | null;
    if (this.o.speed === 'water') kn = water;
    else if (this.o.speed === 'ground') kn = ground;
    else if (water !== null) kn = water;
    else kn = row.tMs - this.lastWaterAt > this.o.maxGapMs ? ground : null; // VHW is flowing: ignore SOG
    if (kn === null || kn < 0) return null;
    const now = { t: row.tMs, ms: kn * KNOT_MS };
    const prev = this.last;
    if (prev && now.t <= prev.t) {
      // The same epoch again (RMC and VTG of one second), or time went back: no distance.
      if (now.t < prev.t) this.last = now;
      return null;
    }
    this.last = now;
    if (!prev || now.t - prev.t > this.o.maxGapMs) return null;
    const volumeM3 = this.o.fovWidthM * this.o.depthOfFieldM * prev.ms * ((now.t - prev.t) / 1000);
    return { tMs: now.t, volumeM3, source: 'swept' };
  }
}
