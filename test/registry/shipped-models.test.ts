// The repository's models/ carries the shipped ensemble's members and what the tests need, and
// nothing else: every clone pays for every file in it. Candidates and past versions travel as
// archives (`plankwatch models archive | fetch`), and models/README.md says how to get them back.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { verifyStore } from '../../src/registry/archive.js';
import { REPO_ROOT } from '../helpers/daemon.js';

const MODELS = path.join(REPO_ROOT, 'models');
/**
 * Member versions kept for the tests beyond the shipped ones: vgg48/v1 is the one member made
 * before model.onnx existed (test/integrity/config-validate.test.ts damages a copy of it, and its
 * model.json is what TensorFlow.js loads there); p4-fit48/v1, shipped until 2026-12-06.6, is the
 * cheap real member the folded-model, archive and camera-transfer tests load.
 */
const FOR_TESTS = ['p4-fit48/v1', 'vgg48/v1'];
/** Everything else at the top of models/, besides the member folders. */
const FILES = ['README.md', 'ensemble.json', 'evaluation', 'reference', 'splits'];

const shipped = (JSON.parse(readFileSync(path.join(MODELS, 'ensemble.json'), 'utf8')) as EnsembleFile).members.map((m) => `${m.name}/${m.version}`);

function memberVersions(): string[] {
  const out: string[] = [];
  for (const name of readdirSync(MODELS)) {
    if (FILES.includes(name) || !statSync(path.join(MODELS, name)).isDirectory()) continue;
    for (const version of readdirSync(path.join(MODELS, name))) out.push(`${name}/${version}`);
  }
  return out.sort();
}

function bytesUnder(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) total += e.isDirectory() ? bytesUnder(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).size;
  return total;
}

describe('models/ in the repository', () => {
  it('holds the shipped members, the versions the tests need, and no candidates or past versions', () => {
    expect(memberVersions()).toEqual([...shipped, ...FOR_TESTS].sort());
    const members = new Set(memberVersions().map((id) => id.split('/')[0]));
    expect(readdirSync(MODELS).filter((n) => !members.has(n)).sort()).toEqual(FILES);
  });

  it('every kept version verifies, and every shipped one has model.onnx', async () => {
    const check = await verifyStore([MODELS]);
    expect(check.problems).toEqual([]);
    expect(check.verified.sort()).toEqual([...shipped, ...FOR_TESTS].sort());
    for (const id of shipped) expect(readdirSync(path.join(MODELS, id))).toContain('model.onnx');
  });

  it('stays small: under 64 MiB', () => {
    expect(bytesUnder(MODELS) / 2 ** 20).toBeLessThan(64);
  });

  it('models/README.md says how to get a past version back', () => {
    const readme = readFileSync(path.join(MODELS, 'README.md'), 'utf8');
    expect(readme).toContain('plankwatch models fetch');
    expect(readme).toContain('plankwatch models archive');
    expect(readme).toMatch(/git (show|archive|worktree)/);
  });
});
