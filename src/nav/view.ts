// What the review page shows of the navigation stage, read from the database: the depth profile of
// concentrations per class and the ship's track, each over the latest hours of data (not of the
// computer's clock: a replayed or delayed cruise shows as well as a live one).
import type { NavRepository, TrackPoint } from '../store/index.js';
import { profileOf, type ProfileBin } from './concentrations.js';

export interface NavView {
  profile(hours: number): { fromMs: number; toMs: number; binM: number; bins: ProfileBin[] } | null;
  track(hours: number, maxPoints: number): { fromMs: number; toMs: number; points: TrackPoint[] } | null;
}

export function navView(repo: NavRepository, o: { windowMs: number; binM: number }): NavView {
  return {
    profile: (hours) => {
      const latest = repo.latestConcentrationWindow(o.windowMs);
      if (latest === null) return null;
      const toMs = latest + o.windowMs;
      const fromMs = toMs - hours * 3_600_000;
      return { fromMs, toMs, binM: o.binM, bins: profileOf(repo.concentrations(o.windowMs, fromMs, o.binM)) };
    },
    track: (hours, maxPoints) => {
      const last = repo.positionBracket(Number.MAX_SAFE_INTEGER).before;
      if (!last) return null;
      const fromMs = last.t - hours * 3_600_000;
      return { fromMs, toMs: last.t, points: repo.track(fromMs, last.t, maxPoints) };
    },
  };
}
