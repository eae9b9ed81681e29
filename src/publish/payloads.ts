// Pure builders for the JSON messages: one place that fixes the wire format.
import type {
  CountsPayload,
  CountsWindow,
  Detection,
  DetectionPayload,
  ModelInfo,
  ModelPayload,
  PipelineStats,
  StatsPayload,
} from './types.js';

export function countsPayload(
  instrument: string,
  window: CountsWindow,
  seq: number,
  final: boolean,
): CountsPayload {
  return {
    instrument,
    window: {
      start: new Date(window.startMs).toISOString(),
      end: new Date(window.endMs).toISOString(),
      startMs: window.startMs,
      endMs: window.endMs,
    },
    seq,
    total: window.total,
    counts: { ...window.counts },
    final,
    ensembleVersion: window.ensembleVersion,
  };
}

export function modelPayload(model: ModelInfo): ModelPayload {
  return {
    ensembleVersion: model.ensembleVersion,
    voting: model.voting,
    members: model.members.map((m) => ({
      name: m.name,
      version: m.version,
      inputSize: m.inputSize,
      tta: [...m.tta],
      metrics: { ...m.metrics },
    })),
    backend: model.backend,
    since: new Date(model.sinceMs).toISOString(),
  };
}

/** `roisPerSecond` is the classified count's increase over `intervalMs`, rounded to 0.01. */
export function statsPayload(
  stats: PipelineStats,
  previousClassified: number,
  intervalMs: number,
  uptimeMs: number,
): StatsPayload {
  const rate = intervalMs > 0 ? (Math.max(0, stats.classified - previousClassified) * 1000) / intervalMs : 0;
  return {
    framesSeen: stats.framesSeen,
    classified: stats.classified,
    duplicates: stats.duplicates,
    quarantined: stats.quarantined,
    queueDepth: stats.queueDepth,
    roisPerSecond: Math.round(rate * 100) / 100,
    backend: stats.backend,
    uptimeS: Math.floor(uptimeMs / 1000),
  };
}

export function detectionPayload(d: Detection): DetectionPayload {
  return {
    sha256: d.sha256,
    file: d.file,
    label: d.label,
    probability: d.probability,
    at: new Date(d.atMs).toISOString(),
  };
}
