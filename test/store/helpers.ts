// Builders for store tests: real fixture JPEGs give the bytes and hashes.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClassifiedFrame, IncomingFile } from '../../src/types.js';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'tiny');

/** The five tiny JPEG fixtures, sorted by name. */
export function fixtureFiles(): string[] {
  return readdirSync(FIXTURES).filter((n) => n.endsWith('.jpg')).sort().map((n) => join(FIXTURES, n));
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `pw-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An IncomingFile for a fixture as if it had landed at `relPath`. */
export function incoming(fixture: string, relPath: string, arrivedAt = 1_700_000_000_000, mtimeMs = 1_700_000_000_000.25): IncomingFile {
  const buf = readFileSync(fixture);
  return {
    path: `/incoming/${relPath}`,
    relPath,
    sha256: createHash('sha256').update(buf).digest('hex'),
    bytes: buf.length,
    arrivedAt,
    mtimeMs,
  };
}

/** A classified frame with a two-member ensemble prediction. */
export function classified(file: IncomingFile, label: string, classifiedAt: number): ClassifiedFrame {
  return {
    frame: { file, width: 40, height: 30, area: 321, format: 'jpeg', inputs: new Map() },
    prediction: {
      label,
      probability: 0.8,
      margin: 0.6,
      disagreement: 0.5,
      topK: [
        { label, probability: 0.8 },
        { label: 'other', probability: 0.2 },
      ],
      members: [
        { member: 'cnn-a', version: '1', topK: [{ label, probability: 0.9 }] },
        { member: 'cnn-b', version: '3', topK: [{ label: 'other', probability: 0.55 }, { label, probability: 0.45 }] },
      ],
      ensembleVersion: 'e1',
    },
    classifiedAt,
  };
}
