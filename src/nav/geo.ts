// Interpolation of positions and values in time: longitudes across the antimeridian, gaps held or
// missing. Pure functions; the quality rules are documented in docs/navigation.md.
import type { Bracket, TagQuality, TimedValue, TrackPoint } from '../store/index.js';

/** Longitude brought into [-180, 180). */
export function wrapLongitude(lon: number): number {
  const w = ((((lon + 180) % 360) + 360) % 360) - 180;
  return Object.is(w, -0) ? 0 : w;
}

/**
 * The longitude a fraction `f` of the way from `a` to `b` along the shorter way round: from 179.5
 * to -179.5 the ship crosses 180, not 0.
 */
export function interpolateLongitude(a: number, b: number, f: number): number {
  let d = b - a;
  if (d > 180) d -= 360;
  else if (d < -180) d += 360;
  return wrapLongitude(a + d * f);
}

export interface Tolerances {
  /** Samples at most this far apart (ms) are interpolated between. */
  maxGapMs: number;
  /** The nearer sample is held up to this far (ms) from the instant; beyond: missing. */
  maxHoldMs: number;
}

/** A value at an instant with how it was had. */
export interface Tagged<T> {
  value: T | null;
  quality: TagQuality;
  /** Interpolated: the span of the bracket; held: the distance to the sample held (seconds). */
  gapS: number | null;
}

/**
 * The value at `t` from the samples either side: interpolated when both exist within maxGapMs of
 * each other, else the nearer one held when within maxHoldMs, else missing.
 */
export function tagAt<S extends { t: number }, V>(t: number, bracket: Bracket<S>, tol: Tolerances, lerp: (a: S, b: S, f: number) => V, take: (s: S) => V): Tagged<V> {
  const { before, after } = bracket;
  if (before && after) {
    const span = after.t - before.t;
    if (span === 0) return { value: take(before), quality: 'interpolated', gapS: 0 };
    if (span <= tol.maxGapMs) return { value: lerp(before, after, (t - before.t) / span), quality: 'interpolated', gapS: span / 1000 };
  }
  const dBefore = before ? t - before.t : Infinity;
  const dAfter = after ? after.t - t : Infinity;
  const nearest = dBefore <= dAfter ? before : after;
  const d = Math.min(dBefore, dAfter);
  if (nearest && d <= tol.maxHoldMs) return { value: take(nearest), quality: 'held', gapS: d / 1000 };
  return { value: null, quality: 'missing', gapS: Number.isFinite(d) ? d / 1000 : null };
}

/** The position at `t`. */
export function positionAt(t: number, bracket: Bracket<TrackPoint>, tol: Tolerances): Tagged<{ lat: number; lon: number }> {
  return tagAt(
    t,
    bracket,
    tol,
    (a, b, f) => ({ lat: a.lat + (b.lat - a.lat) * f, lon: interpolateLongitude(a.lon, b.lon, f) }),
    (s) => ({ lat: s.lat, lon: s.lon }),
  );
}

/** A scalar (depth, temperature, salinity) at `t`. */
export function valueAt(t: number, bracket: Bracket<TimedValue>, tol: Tolerances): Tagged<number> {
  return tagAt(t, bracket, tol, (a, b, f) => a.value + (b.value - a.value) * f, (s) => s.value);
}

/** The worse of two qualities. */
export function worse(a: TagQuality, b: TagQuality): TagQuality {
  const rank = { interpolated: 0, held: 1, missing: 2 } as const;
  return rank[a] >= rank[b] ? a : b;
}
