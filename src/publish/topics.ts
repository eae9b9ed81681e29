// Topic names under `<prefix>/<instrument>/`.
import { PlankwatchError } from '../errors.js';

export interface Topics {
  availability: string;
  counts: string;
  model: string;
  stats: string;
  detections: string;
  /** Retained: depth profile of concentrations (nav stage). */
  profile: string;
  /** Concentrations of each window, with position and depth (nav stage). */
  concentrations: string;
  /** Retained: latest ROI position and water (nav stage). */
  position: string;
}

/** Topic names for one instrument. Neither part may contain MQTT wildcards or a slash. */
export function topicsFor(prefix: string, instrument: string): Topics {
  for (const [key, value] of [['publish.topicPrefix', prefix], ['instrument.id', instrument]] as const) {
    if (value === '' || /[#+/\u0000]/.test(value)) {
      throw new PlankwatchError('PW_E_CONFIG_INVALID', `${key} "${value}" must be non-empty and contain none of # + / NUL; set another in the config file.`);
    }
  }
  const base = `${prefix}/${instrument}`;
  return {
    availability: `${base}/availability`,
    counts: `${base}/counts`,
    model: `${base}/model`,
    stats: `${base}/stats`,
    detections: `${base}/detections`,
    profile: `${base}/profile`,
    concentrations: `${base}/concentrations`,
    position: `${base}/position`,
  };
}
