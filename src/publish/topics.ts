// Topic names under `<prefix>/<instrument>/`.

export interface Topics {
  availability: string;
  counts: string;
  model: string;
  stats: string;
  detections: string;
}

/** Topic names for one instrument. Neither part may contain MQTT wildcards or a slash. */
export function topicsFor(prefix: string, instrument: string): Topics {
  for (const [name, value] of [['prefix', prefix], ['instrument', instrument]] as const) {
    if (value === '' || /[#+/\u0000]/.test(value)) {
      throw new Error(`${name} "${value}" must be non-empty and contain none of # + / NUL`);
    }
  }
  const base = `${prefix}/${instrument}`;
  return {
    availability: `${base}/availability`,
    counts: `${base}/counts`,
    model: `${base}/model`,
    stats: `${base}/stats`,
    detections: `${base}/detections`,
  };
}
