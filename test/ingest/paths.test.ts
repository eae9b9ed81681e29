import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PathFilter } from '../../src/ingest/paths.js';

describe('PathFilter', () => {
  const w = '/data/incoming';
  const f = new PathFilter({ watchDir: w, excludeDirs: [join(w, 'archive'), '/data/quarantine'] });

  it('accepts images anywhere below the watch folder, and the folder itself', () => {
    expect(f.ignores(w)).toBe(false);
    expect(f.ignores(join(w, 'a.jpg'))).toBe(false);
    expect(f.ignores(join(w, 'tow1', 'cast 2', 'b.JPG'))).toBe(false);
    expect(f.ignores(join(w, 'archive-notes', 'c.jpg'))).toBe(false);
  });

  it('skips temp and hidden names, files and folders alike', () => {
    for (const p of ['x.jpg.tmp', 'x.jpg.PART', 'x.part', '.x.jpg', '.staging/x.jpg', 'd.tmp/x.jpg']) {
      expect(f.ignores(join(w, p)), p).toBe(true);
    }
  });

  it('skips excluded folders and anything outside the watch folder', () => {
    expect(f.ignores(join(w, 'archive'))).toBe(true);
    expect(f.ignores(join(w, 'archive', 'x', 'a.jpg'))).toBe(true);
    expect(f.ignores('/data/quarantine/a.jpg')).toBe(true);
    expect(f.ignores('/data/other/a.jpg')).toBe(true);
    expect(f.ignores('/data/incoming-old/a.jpg')).toBe(true);
  });

  it('an excluded single file is skipped, its neighbours are not', () => {
    const g = new PathFilter({ watchDir: w, excludeDirs: [join(w, 'pw.db'), join(w, 'pw.db-wal')] });
    expect(g.ignores(join(w, 'pw.db'))).toBe(true);
    expect(g.ignores(join(w, 'pw.db-wal'))).toBe(true);
    expect(g.ignores(join(w, 'pw.dbx'))).toBe(false);
  });

  it('names paths relative to the watch folder with forward slashes', () => {
    expect(f.relPath(join(w, 'tow1', 'a.jpg'))).toBe('tow1/a.jpg');
  });

  it('a watch folder whose own name starts with a dot still works', () => {
    const hidden = new PathFilter({ watchDir: '/tmp/.cam', excludeDirs: [] });
    expect(hidden.ignores('/tmp/.cam/a.jpg')).toBe(false);
  });
});
