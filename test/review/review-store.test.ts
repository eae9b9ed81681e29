// ReviewStore against a real SQLite file: queue order and filters, label states, append-only
// history, the in-transaction hook, and what fine-tuning reads.
import { afterEach, describe, expect, it } from 'vitest';
import { PlankwatchError } from '../../src/errors.js';
import { seedStore, T0, type Seeded } from './helpers.js';

let seeded: Seeded | undefined;
afterEach(() => {
  seeded?.cleanup();
  seeded = undefined;
});

function seed(n?: number): Seeded {
  seeded = seedStore(n);
  return seeded;
}

describe('ReviewStore', () => {
  it('lists predicted ROIs most uncertain first: highest disagreement, then lowest margin', () => {
    const { review } = seed(12);
    const page = review.queue({ limit: 500 });
    expect(page.total).toBe(12);
    const keys = page.items.map((i) => [i.prediction.disagreement, i.prediction.margin]);
    const sorted = [...keys].sort((a, b) => b[0]! - a[0]! || a[1]! - b[1]!);
    expect(keys).toEqual(sorted);
    expect(page.items[0]!.state).toEqual({ status: 'predicted', label: page.items[0]!.prediction.label, user: null, at: null });
  });

  it('filters by predicted class, time, status, and pages with limit/offset', () => {
    const { review, shas } = seed(12);
    expect(review.queue({ label: 'copepod' }).items.every((i) => i.prediction.label === 'copepod')).toBe(true);
    expect(review.queue({ label: 'copepod' }).total).toBe(4);
    expect(review.queue({ since: T0 + 5000, until: T0 + 8000 }).total).toBe(3);
    const all = review.queue({ limit: 500 }).items.map((i) => i.sha256);
    expect(review.queue({ limit: 5, offset: 5 }).items.map((i) => i.sha256)).toEqual(all.slice(5, 10));
    review.label({ sha256: shas[0]!, action: 'confirm', user: 'ana' });
    review.label({ sha256: shas[1]!, action: 'dubious', user: 'ana' });
    expect(review.queue().total).toBe(10);
    expect(review.queue({ status: ['validated'] }).items.map((i) => i.sha256)).toEqual([shas[0]]);
    expect(review.queue({ status: ['dubious', 'validated'] }).total).toBe(2);
    expect(review.queue({ status: ['predicted', 'validated', 'dubious'] }).total).toBe(12);
  });

  it('confirms, corrects and marks dubious with who and when, keeping every change', () => {
    const { review, shas, labels, store } = seed(6);
    const sha = shas[0]!;
    const a = review.label({ sha256: sha, action: 'confirm', user: 'ana' });
    expect(a).toMatchObject({ action: 'confirm', status: 'validated', label: labels[0], previousStatus: 'predicted', previousLabel: labels[0], user: 'ana', newClass: false });
    const b = review.label({ sha256: sha, action: 'correct', label: 'detritus', user: 'ben' });
    expect(b).toMatchObject({ status: 'validated', label: 'detritus', previousStatus: 'validated', previousLabel: labels[0], user: 'ben' });
    const c = review.label({ sha256: sha, action: 'dubious', user: 'cy' });
    expect(c).toMatchObject({ status: 'dubious', label: 'detritus', previousLabel: 'detritus' });
    expect(review.current(sha)).toEqual({ status: 'dubious', label: 'detritus', user: 'cy', at: c.at });
    const history = review.history(sha);
    expect(history.map((h) => [h.action, h.status, h.label, h.user])).toEqual([
      ['confirm', 'validated', labels[0], 'ana'],
      ['correct', 'validated', 'detritus', 'ben'],
      ['dubious', 'dubious', 'detritus', 'cy'],
    ]);
    expect(history[0]!.at).toBeLessThan(history[2]!.at);
    // The history cannot be rewritten, even with SQL.
    expect(() => store.database.prepare('UPDATE label_events SET label = ?').run('x')).toThrow(/append-only/);
    expect(() => store.database.prepare('DELETE FROM label_events').run()).toThrow(/append-only/);
  });

  it('refuses a confirm of a label that changed meanwhile, and unknown frames', () => {
    const { review, shas } = seed(3);
    review.label({ sha256: shas[0]!, action: 'correct', label: 'protist', user: 'ana' });
    const err = (() => {
      try {
        review.label({ sha256: shas[0]!, action: 'confirm', label: 'copepod', user: 'ben' });
      } catch (e) {
        return e as PlankwatchError;
      }
    })();
    expect(err?.code).toBe('PW_E_REVIEW_CONFLICT');
    expect(review.history(shas[0]!)).toHaveLength(1);
    expect(() => review.label({ sha256: 'f'.repeat(64), action: 'confirm', user: 'a' })).toThrow(/PW_E_REVIEW_NOT_FOUND/);
  });

  it('lets a correction introduce a new class only when asked to, then lists it', () => {
    const { review, shas } = seed(3);
    expect(() => review.label({ sha256: shas[0]!, action: 'correct', label: 'siphonophore', user: 'ana' })).toThrow(/PW_E_REVIEW_NEW_CLASS/);
    const r = review.label({ sha256: shas[0]!, action: 'correct', label: 'siphonophore', user: 'ana', newClass: true });
    expect(r.newClass).toBe(true);
    expect(review.classes()).toContainEqual({ name: 'siphonophore', known: false, validated: 1 });
    expect(review.classes().find((c) => c.name === 'copepod')).toMatchObject({ known: true });
    // Once used, the class is no longer new.
    expect(review.label({ sha256: shas[1]!, action: 'correct', label: 'siphonophore', user: 'ben' }).newClass).toBe(false);
  });

  it('bulk: applies what it can in one transaction and reports the rest', () => {
    const { review, shas, labels } = seed(6);
    const results = review.labelMany([
      { sha256: shas[0]!, action: 'confirm', label: labels[0], user: 'ana' },
      { sha256: shas[1]!, action: 'confirm', label: 'not-its-label', user: 'ana' },
      { sha256: 'e'.repeat(64), action: 'confirm', user: 'ana' },
      { sha256: shas[2]!, action: 'confirm', user: 'ana' },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, false, false, true]);
    expect(results[1]!.error?.code).toBe('PW_E_REVIEW_CONFLICT');
    expect(results[2]!.error?.code).toBe('PW_E_REVIEW_NOT_FOUND');
    expect(review.queue({ status: ['validated'] }).total).toBe(2);
  });

  it('calls onLabelChanged inside the transaction: a listener write commits with the label, a throw rolls both back', () => {
    const { review, shas, store } = seed(3);
    const db = store.database;
    db.exec('CREATE TABLE test_outbox (event_id INTEGER, payload TEXT)');
    const seen: number[] = [];
    const off = review.onLabelChanged((record) => {
      expect(db.inTransaction).toBe(true);
      db.prepare('INSERT INTO test_outbox VALUES (?, ?)').run(record.eventId, JSON.stringify(record));
      seen.push(record.eventId);
    });
    const r = review.label({ sha256: shas[0]!, action: 'confirm', user: 'ana' });
    expect(seen).toEqual([r.eventId]);
    expect(JSON.parse((db.prepare('SELECT payload FROM test_outbox').get() as { payload: string }).payload)).toEqual(r);
    off();
    review.onLabelChanged(() => {
      throw new Error('outbox full');
    });
    expect(() => review.label({ sha256: shas[1]!, action: 'dubious', user: 'ben' })).toThrow('outbox full');
    expect(review.current(shas[1]!)?.status).toBe('predicted');
    expect(review.history(shas[1]!)).toEqual([]);
    expect(() => review.labelMany([{ sha256: shas[2]!, action: 'confirm', user: 'ben' }])).toThrow('outbox full');
    expect(review.history(shas[2]!)).toEqual([]);
  });

  it('gives fine-tuning the current validated labels since a point, and counts them', () => {
    const { review, shas } = seed(6);
    const a = review.label({ sha256: shas[0]!, action: 'confirm', user: 'ana' });
    review.label({ sha256: shas[1]!, action: 'correct', label: 'protist', user: 'ana' });
    review.label({ sha256: shas[2]!, action: 'dubious', user: 'ana' });
    const all = review.validatedLabels();
    expect(all.map((v) => [v.sha256, v.user])).toEqual([[shas[0], 'ana'], [shas[1], 'ana']]);
    expect(all[1]).toMatchObject({ label: 'protist', relPath: expect.stringMatching(/^cast-1\//) });
    expect(review.validatedLabels(a.eventId).map((v) => v.sha256)).toEqual([shas[1]]);
    // Validated then doubted: no longer in the training set.
    review.label({ sha256: shas[0]!, action: 'dubious', user: 'ben' });
    expect(review.validatedLabels().map((v) => v.sha256)).toEqual([shas[1]]);
    const counts = review.validatedCounts();
    expect(counts).toMatchObject({ total: 1, byLabel: { protist: 1 } });
    expect(review.validatedCounts({ sinceEventId: counts.lastEventId }).total).toBe(0);
  });
});
