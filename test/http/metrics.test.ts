import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/http/metrics.js';
import { Registry } from '../../src/http/metrics-registry.js';

// One sample line of the text exposition format 0.0.4: name, optional labels, value, optional timestamp.
const LABEL = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`;
const VALUE = String.raw`(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)`;
const SAMPLE = new RegExp(String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(${LABEL}(?:,${LABEL})*)?\})? (${VALUE})(?: -?\d+)?$`);
const HELP = /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/;
const TYPE = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/;

/** Checks every line against the grammar and returns the samples. */
function parse(text: string): Array<{ name: string; labels: string; value: number }> {
  expect(text.endsWith('\n')).toBe(true);
  const types = new Map<string, string>();
  const samples: Array<{ name: string; labels: string; value: number }> = [];
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP')) {
      expect(line).toMatch(HELP);
      continue;
    }
    if (line.startsWith('# TYPE')) {
      const m = TYPE.exec(line);
      expect(m, line).not.toBeNull();
      expect(types.has(m![1]!), `duplicate TYPE ${m![1]}`).toBe(false);
      types.set(m![1]!, m![2]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    expect(m, `not a sample line: ${JSON.stringify(line)}`).not.toBeNull();
    const name = m![1]!;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(family), `sample ${name} before its TYPE`).toBe(true);
    const raw = m![3]!;
    samples.push({ name, labels: m![2] ?? '', value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return samples;
}

describe('Metrics', () => {
  it('exposes every daemon metric in valid exposition format', () => {
    const m = new Metrics();
    m.framesSeen.inc(10);
    m.framesClassified.inc(7);
    m.duplicates.inc();
    m.quarantined.inc(2, { reason: 'PW_E_IMAGE_CORRUPT' });
    m.quarantined.inc(1, { reason: 'PW_E_IMAGE_EMPTY' });
    m.queueDepth.set(5);
    for (const v of [0.004, 0.03, 0.03, 0.7, 12, 99]) m.batchLatency.observe(v);
    m.arrivalToStored.observe(1.5);
    m.setBackend('cpu');
    m.setBackend('wasm');
    m.setModelVersion('e-2024-06-01');
    m.mqttConnected.set(1);
    const text = m.expose();
    const samples = parse(text);
    const value = (name: string, labels = '') => samples.find((s) => s.name === name && s.labels === labels)?.value;

    expect(value('plankwatch_frames_seen_total')).toBe(10);
    expect(value('plankwatch_frames_classified_total')).toBe(7);
    expect(value('plankwatch_duplicates_total')).toBe(1);
    expect(value('plankwatch_quarantined_total', 'reason="PW_E_IMAGE_CORRUPT"')).toBe(2);
    expect(value('plankwatch_queue_depth')).toBe(5);
    expect(value('plankwatch_backend_info', 'backend="wasm"')).toBe(1);
    expect(value('plankwatch_backend_info', 'backend="cpu"')).toBeUndefined();
    expect(value('plankwatch_model_info', 'version="e-2024-06-01"')).toBe(1);
    expect(value('plankwatch_mqtt_connected')).toBe(1);
    expect(text).toContain('# TYPE plankwatch_batch_latency_seconds histogram\n');
    expect(text).toContain('# TYPE plankwatch_frames_seen_total counter\n');

    // Histogram: buckets cumulative and increasing in le, +Inf equals _count, _sum right.
    const buckets = samples.filter((s) => s.name === 'plankwatch_batch_latency_seconds_bucket');
    const les = buckets.map((b) => /le="([^"]+)"/.exec(b.labels)![1]!);
    expect(les.at(-1)).toBe('+Inf');
    const bounds = les.map((l) => (l === '+Inf' ? Infinity : Number(l)));
    for (let i = 1; i < buckets.length; i++) {
      expect(bounds[i]!).toBeGreaterThan(bounds[i - 1]!);
      expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    }
    expect(value('plankwatch_batch_latency_seconds_bucket', 'le="0.01"')).toBe(1);
    expect(value('plankwatch_batch_latency_seconds_bucket', 'le="0.05"')).toBe(3);
    expect(value('plankwatch_batch_latency_seconds_bucket', 'le="30"')).toBe(5);
    expect(buckets.at(-1)!.value).toBe(6);
    expect(value('plankwatch_batch_latency_seconds_count')).toBe(6);
    expect(value('plankwatch_batch_latency_seconds_sum')).toBeCloseTo(111.764, 9);
  });

  it('shows unlabelled metrics at 0 before any update', () => {
    const samples = parse(new Metrics().expose());
    expect(samples.find((s) => s.name === 'plankwatch_frames_seen_total')?.value).toBe(0);
    expect(samples.find((s) => s.name === 'plankwatch_arrival_to_stored_seconds_count')?.value).toBe(0);
    expect(samples.some((s) => s.name === 'plankwatch_quarantined_total')).toBe(false);
  });
});

describe('Registry', () => {
  it('escapes label values and help text, labels histograms', () => {
    const r = new Registry();
    r.gauge<'path'>({ name: 'g', help: 'a \\ b\nc', labelNames: ['path'] }).set(-2.5, { path: 'C:\\x "q"\nz' });
    const h = r.histogram<'stage'>({ name: 'h_seconds', help: 'h', labelNames: ['stage'], buckets: [1, 2] });
    h.observe(1.5, { stage: 'a' });
    h.observe(3, { stage: 'b' });
    const text = r.expose();
    parse(text);
    expect(text).toContain('# HELP g a \\\\ b\\nc\n');
    expect(text).toContain('g{path="C:\\\\x \\"q\\"\\nz"} -2.5\n');
    expect(text).toContain('h_seconds_bucket{stage="a",le="1"} 0\n');
    expect(text).toContain('h_seconds_bucket{stage="a",le="2"} 1\n');
    expect(text).toContain('h_seconds_bucket{stage="b",le="+Inf"} 1\n');
    expect(text).toContain('h_seconds_sum{stage="b"} 3\n');
  });

  it('rejects bad names, reserved labels, duplicate registration and negative counter increments', () => {
    const r = new Registry();
    expect(() => r.counter({ name: '1bad', help: 'x' })).toThrow();
    expect(() => r.histogram<'le'>({ name: 'h', help: 'x', labelNames: ['le'], buckets: [1] })).toThrow();
    r.counter({ name: 'c_total', help: 'x' });
    expect(() => r.counter({ name: 'c_total', help: 'x' })).toThrow();
    const c = r.counter({ name: 'd_total', help: 'x' });
    expect(() => c.inc(-1)).toThrow();
  });
});
