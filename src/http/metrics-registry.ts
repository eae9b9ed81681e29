// A small Prometheus registry: counters, gauges and histograms with labels, exposed in the
// text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).

/** Content-Type of `Registry.expose()` output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
import { PlankwatchError } from '../errors.js';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values keyed by label name. */
export type Labels<L extends string> = Readonly<Record<L, string>>;
/** No argument for a metric without labels; a labels object for one with labels. */
export type LabelArg<L extends string> = [L] extends [never] ? [] : [labels: Labels<L>];

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds in increasing order; `+Inf` is added. */
  buckets: readonly number[];
}

interface Metric {
  readonly name: string;
  lines(): string[];
}

abstract class LabelledMetric<L extends string, V> implements Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { labels: Labels<L>; value: V }>();

  constructor(options: MetricOptions<L>, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(options.name)) throw new PlankwatchError('PW_E_INTERNAL', `invalid metric name "${options.name}"`);
    for (const l of options.labelNames ?? []) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || reserved.includes(l)) {
        throw new PlankwatchError('PW_E_INTERNAL', `invalid label name "${l}" on ${options.name}`);
      }
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  abstract lines(): string[];

  /** Forgets every labelled series (e.g. before setting a new info value). */
  reset(): void {
    this.series.clear();
  }

  /** The current value of one series, without creating it. */
  protected find(labels: Labels<L> | undefined): V | undefined {
    const given = (labels ?? {}) as Record<string, string>;
    return this.series.get(JSON.stringify(this.labelNames.map((n) => given[n])))?.value;
  }

  protected entry(labels: Labels<L> | undefined, init: () => V): { labels: Labels<L>; value: V } {
    const given = (labels ?? {}) as Record<string, string>;
    const values = this.labelNames.map((n) => {
      const v = given[n];
      if (typeof v !== 'string') throw new PlankwatchError('PW_E_INTERNAL', `${this.name}: label "${n}" missing`);
      return v;
    });
    const key = JSON.stringify(values);
    let e = this.series.get(key);
    if (e === undefined) {
      e = { labels: { ...(given as Labels<L>) }, value: init() };
      this.series.set(key, e);
    }
    return e;
  }

  protected header(type: string): string[] {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${type}`];
  }

  protected sample(name: string, labels: Labels<L>, value: number, extra?: [string, string]): string {
    const pairs = this.labelNames.map((n) => `${n}="${escapeLabel(labels[n])}"`);
    if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return `${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`;
  }

  /** A metric without labels shows 0 before its first update; labelled ones show nothing. */
  protected ensureDefault(init: () => V): void {
    if (this.labelNames.length === 0 && this.series.size === 0) this.entry(undefined, init);
  }
}

/** A value that only goes up (resets when the process restarts). */
export class Counter<L extends string = never> extends LabelledMetric<L, number> {
  inc(value = 1, ...labels: LabelArg<L>): void {
    if (!(value >= 0)) throw new PlankwatchError('PW_E_INTERNAL', `${this.name}: counters only go up (got ${value})`);
    this.entry(labels[0], () => 0).value += value;
  }

  get(...labels: LabelArg<L>): number {
    return this.find(labels[0]) ?? 0;
  }

  lines(): string[] {
    this.ensureDefault(() => 0);
    return [...this.header('counter'), ...[...this.series.values()].map((e) => this.sample(this.name, e.labels, e.value))];
  }
}

/** A value that goes up and down. */
export class Gauge<L extends string = never> extends LabelledMetric<L, number> {
  set(value: number, ...labels: LabelArg<L>): void {
    this.entry(labels[0], () => 0).value = value;
  }

  inc(value = 1, ...labels: LabelArg<L>): void {
    this.entry(labels[0], () => 0).value += value;
  }

  dec(value = 1, ...labels: LabelArg<L>): void {
    this.entry(labels[0], () => 0).value -= value;
  }

  get(...labels: LabelArg<L>): number {
    return this.find(labels[0]) ?? 0;
  }

  lines(): string[] {
    this.ensureDefault(() => 0);
    return [...this.header('gauge'), ...[...this.series.values()].map((e) => this.sample(this.name, e.labels, e.value))];
  }
}

interface HistogramValue {
  /** Non-cumulative count per bucket, then one for +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations sorted into cumulative buckets, with their sum and count. */
export class Histogram<L extends string = never> extends LabelledMetric<L, HistogramValue> {
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions<L>) {
    super(options, ['le']);
    const b = options.buckets.filter((x) => x !== Infinity);
    for (let i = 1; i < b.length; i++) {
      if (!(b[i]! > b[i - 1]!)) throw new PlankwatchError('PW_E_INTERNAL', `${options.name}: buckets must increase`);
    }
    this.buckets = b;
  }

  observe(value: number, ...labels: LabelArg<L>): void {
    const e = this.entry(labels[0], () => this.empty());
    let i = this.buckets.findIndex((upper) => value <= upper);
    if (i === -1) i = this.buckets.length;
    e.value.counts[i]! += 1;
    e.value.sum += value;
    e.value.count += 1;
  }

  lines(): string[] {
    this.ensureDefault(() => this.empty());
    const out = this.header('histogram');
    for (const { labels, value } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((upper, i) => {
        cumulative += value.counts[i]!;
        out.push(this.sample(`${this.name}_bucket`, labels, cumulative, ['le', formatValue(upper)]));
      });
      out.push(this.sample(`${this.name}_bucket`, labels, value.count, ['le', '+Inf']));
      out.push(this.sample(`${this.name}_sum`, labels, value.sum));
      out.push(this.sample(`${this.name}_count`, labels, value.count));
    }
    return out;
  }

  private empty(): HistogramValue {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }
}

/** Holds metrics and renders them all. */
export class Registry {
  private readonly metrics = new Map<string, Metric>();

  counter<L extends string = never>(options: MetricOptions<L>): Counter<L> {
    return this.add(new Counter<L>(options));
  }

  gauge<L extends string = never>(options: MetricOptions<L>): Gauge<L> {
    return this.add(new Gauge<L>(options));
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.add(new Histogram<L>(options));
  }

  /** Every metric in the text exposition format 0.0.4, ending with a newline. */
  expose(): string {
    const lines: string[] = [];
    for (const m of this.metrics.values()) lines.push(...m.lines());
    return `${lines.join('\n')}\n`;
  }

  private add<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new PlankwatchError('PW_E_INTERNAL', `metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
