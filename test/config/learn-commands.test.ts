// The training and model commands load from their own module; a broken install must say so, with
// a code, a message and exit status 2, never leave a CLI that silently lacks `train`.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const cli = (dir: string, args: string[]) =>
  spawnSync(process.execPath, [path.join(dir, 'bin/plankwatch.js'), ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });

describe('learn commands in the CLI', () => {
  it('help lists train, average and evaluate', () => {
    const r = cli(ROOT, ['--help']);
    expect(r.status).toBe(0);
    for (const c of ['train', 'average', 'evaluate']) expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
  });

  it('the import of the learn commands has no catch that swallows its failure', () => {
    const text = readFileSync(path.join(ROOT, 'src/cli.ts'), 'utf8');
    expect(text).toContain("import('./learn/cli.js')");
    expect(text).not.toMatch(/\.catch\(\s*\(\)\s*=>\s*(undefined|null|\{\s*\})\s*\)/);
  });

  it('an install without the learn module exits 2 with PW_E_LEARN_LOAD', () => {
    // A copy of the built install with dist/learn/cli.js missing, as a damaged or partial copy has it.
    const dir = mkdtempSync(path.join(tmpdir(), 'pw-learn-load-'));
    try {
      cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
      cpSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
      cpSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
      cpSync(path.join(ROOT, 'config'), path.join(dir, 'config'), { recursive: true });
      symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
      rmSync(path.join(dir, 'dist/learn/cli.js'));
      const r = cli(dir, ['--help']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('PW_E_LEARN_LOAD');
      expect(r.stderr).toContain('learn/cli.js');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
