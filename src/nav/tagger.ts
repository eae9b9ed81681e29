// Tags ROIs with position and water at their capture time, from the stored series. A tag that is
// not "interpolated" (data after the ROI had not arrived yet, or a gap) is tagged again when samples
// for its time arrive (retag), so an ROI that arrives before the nav data bracketing it ends up as
// well tagged as one that arrives after.
import type { NavRepository, RoiPosition, TimeSource } from '../store/index.js';
import type { SidecarValues } from './capture.js';
import { depthFromPressure } from './depth.js';
import { positionAt, valueAt, worse, type Tolerances } from './geo.js';

export interface TagInput {
  frameId: number;
  t: number;
  timeSource: TimeSource;
  sidecar: SidecarValues | null;
}

export class Tagger {
  constructor(
    private readonly repo: NavRepository,
    private readonly tol: Tolerances,
    private readonly o: { depthOffsetM: number; defaultLatitude: number },
  ) {}

  /** The tag of one ROI now; sidecar values, measured at the ROI itself, win over the series. */
  tag(input: TagInput, now: number): RoiPosition {
    const { t } = input;
    const sc = input.sidecar ?? {};
    const pos = sc.lat !== undefined && sc.lon !== undefined ? { value: { lat: sc.lat, lon: sc.lon }, quality: 'interpolated' as const, gapS: 0 } : positionAt(t, this.repo.positionBracket(t), this.tol);
    const exact = (v: number) => ({ value: v, quality: 'interpolated' as const, gapS: 0 });
    const sidecarDepth = sc.depthM ?? (sc.pressureDbar !== undefined ? depthFromPressure(sc.pressureDbar, pos.value?.lat ?? this.o.defaultLatitude) : undefined);
    const depth = sidecarDepth !== undefined ? exact(sidecarDepth + this.o.depthOffsetM) : valueAt(t, this.repo.envBracket('depth_m', t), this.tol);
    const temp = sc.temperatureC !== undefined ? exact(sc.temperatureC) : valueAt(t, this.repo.envBracket('temperature_c', t), this.tol);
    const sal = sc.salinity !== undefined ? exact(sc.salinity) : valueAt(t, this.repo.envBracket('salinity', t), this.tol);
    // The water's quality is depth's when a depth is known at all; else the worse of T and S.
    const env = depth.quality !== 'missing' ? depth : temp.quality === 'missing' ? sal : sal.quality === 'missing' ? temp : { ...temp, quality: worse(temp.quality, sal.quality) };
    return {
      frameId: input.frameId,
      tMs: t,
      timeSource: input.timeSource,
      lat: pos.value?.lat ?? null,
      lon: pos.value?.lon ?? null,
      depthM: depth.value,
      temperatureC: temp.value,
      salinity: sal.value,
      quality: pos.quality,
      gapS: pos.gapS,
      envQuality: env.quality,
      envGapS: env.gapS,
      taggedAt: now,
    };
  }

  /**
   * Tags again the ROIs captured in [from, to] whose tag is not interpolated (only those with a
   * part 'missing' when `missingOnly`); values a sidecar gave are kept. Returns the rows that changed.
   */
  retag(from: number, to: number, now: number, missingOnly = false): RoiPosition[] {
    const changed: RoiPosition[] = [];
    const seen = new Set<number>();
    let cursor = from;
    for (;;) {
      const page = missingOnly ? this.repo.missing(cursor, to, 500) : this.repo.untagged(cursor, to, 500);
      const fresh = page.filter((r) => !seen.has(r.frameId));
      for (const old of fresh) {
        seen.add(old.frameId);
        const next = this.tag({ frameId: old.frameId, t: old.tMs, timeSource: old.timeSource, sidecar: null }, now);
        // Keep values a sidecar gave (gap 0, interpolated) where the series has less.
        if (old.quality === 'interpolated') Object.assign(next, { lat: old.lat, lon: old.lon, quality: old.quality, gapS: old.gapS });
        if (old.envQuality === 'interpolated') Object.assign(next, { depthM: old.depthM, temperatureC: old.temperatureC, salinity: old.salinity, envQuality: old.envQuality, envGapS: old.envGapS });
        if (next.quality !== old.quality || next.envQuality !== old.envQuality || next.lat !== old.lat || next.depthM !== old.depthM || next.gapS !== old.gapS || next.envGapS !== old.envGapS) changed.push(next);
      }
      if (page.length < 500) break;
      const last = page[page.length - 1]!.tMs;
      cursor = fresh.length === 0 ? last + 1 : last;
    }
    if (changed.length > 0) this.repo.upsertRoiPositions(changed);
    return changed;
  }
}
