// Temperature scaling of the ensemble's vote (`plankwatch evaluate --calibrate`).
//
// The vote's log-probabilities are divided by one temperature T and renormalised (T > 1 softens an
// over-confident vote, T < 1 sharpens a timid one). The winning class never changes, so top-1 is
// untouched; log-loss, the review queue's order and the probability users read are what move.
//
// T is fitted on held-out images by minimising their log-loss. Scored on the same images that
// choice looks better than it will do on new ones, so the figure reported beside it is
// cross-fitted: T fitted on one half of the images and scored on the other, both ways, over a few
// seeded halvings (the same halvings as the ensemble search's fair estimate).
import { applyTemperature } from '../classify/voting.js';
import { rowLogLoss } from './metrics.js';
import { randomHalvings } from './ensemble-search.js';

/** Temperatures searched: the fit never leaves this range. */
export const TEMPERATURE_RANGE = [0.25, 4] as const;

export interface Calibration {
  /** Fitted on every image given: the value to write into the ensemble file. */
  temperature: number;
  /** Log-loss of the rows as they are (T = 1). */
  logLossBefore: number;
  /** Log-loss of the rows scaled by the temperature fitted on all of them (in-sample). */
  logLossInSample: number;
  /** Mean log-loss on one half of the images with T fitted on the other (a fair estimate). */
  logLossCrossFitted: number;
  /** Seeded halvings the cross-fitted figure averages over (each used both ways). */
  halvings: number;
}

/** Mean log-loss of rows `which` (all when omitted) with the distribution scaled by `temperature`. */
export function temperedLogLoss(rows: Float32Array, labels: Int32Array, k: number, temperature: number, which?: Uint8Array, side = 1): number {
  const scaled = new Float32Array(k);
  let total = 0;
  let count = 0;
  for (let r = 0; r < labels.length; r++) {
    if (which && which[r] !== side) continue;
    scaled.set(rows.subarray(r * k, (r + 1) * k));
    applyTemperature(scaled, temperature);
    total += rowLogLoss(scaled, 0, k, labels[r]!);
    count++;
  }
  return count === 0 ? 0 : total / count;
}

/**
 * The temperature that minimises the log-loss of rows `which` (all when omitted): a golden-section
 * search on log T over TEMPERATURE_RANGE (the log-loss is smooth and unimodal in log T).
 */
export function fitTemperature(rows: Float32Array, labels: Int32Array, k: number, which?: Uint8Array, side = 1): number {
  let lo = Math.log(TEMPERATURE_RANGE[0]);
  let hi = Math.log(TEMPERATURE_RANGE[1]);
  const phi = (Math.sqrt(5) - 1) / 2;
  const loss = (logT: number) => temperedLogLoss(rows, labels, k, Math.exp(logT), which, side);
  let a = hi - phi * (hi - lo);
  let b = lo + phi * (hi - lo);
  let la = loss(a);
  let lb = loss(b);
  while (hi - lo > 1e-3) {
    if (la < lb) {
      hi = b;
      b = a;
      lb = la;
      a = hi - phi * (hi - lo);
      la = loss(a);
    } else {
      lo = a;
      a = b;
      la = lb;
      b = lo + phi * (hi - lo);
      lb = loss(b);
    }
  }
  return Math.exp((lo + hi) / 2);
}

/** Fit the temperature on all rows, and estimate fairly what it gives on new images. */
export function calibrate(rows: Float32Array, labels: Int32Array, k: number, halvings = 4, seed = 1): Calibration {
  const temperature = fitTemperature(rows, labels, k);
  const masks = labels.length >= 2 ? randomHalvings(labels.length, halvings, seed) : [];
  let crossFitted = 0;
  for (const mask of masks) {
    for (const side of [0, 1]) {
      const t = fitTemperature(rows, labels, k, mask, 1 - side);
      crossFitted += temperedLogLoss(rows, labels, k, t, mask, side);
    }
  }
  return {
    temperature,
    logLossBefore: temperedLogLoss(rows, labels, k, 1),
    logLossInSample: temperedLogLoss(rows, labels, k, temperature),
    logLossCrossFitted: masks.length > 0 ? crossFitted / (2 * masks.length) : temperedLogLoss(rows, labels, k, temperature),
    halvings: masks.length,
  };
}

/** One line for the evaluation table. */
export function describeCalibration(c: Calibration): string {
  return (
    `temperature of the vote: ${c.temperature.toFixed(3)} (fitted on all the evaluated images; log-loss ${c.logLossBefore.toFixed(4)} -> ${c.logLossInSample.toFixed(4)} in-sample, ` +
    `${c.logLossCrossFitted.toFixed(4)} fitted on one half and scored on the other over ${c.halvings} halvings: the fair figure)`
  );
}
