// `plankwatch models archive | fetch | verify` as a technician runs them (the compiled CLI): a
// version leaves one store as a file and arrives whole in another, named by the config's
// classify.modelsDir; a damaged archive exits 2 with the catalogue code and installs nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../helpers/daemon.js';

const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');
const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
const work = mkdtempSync(path.join(tmpdir(), 'pw-cli-archive-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('plankwatch models archive | fetch | verify', () => {
  it('moves a shipped version into the store a config names, and refuses a damaged copy', () => {
    const archive = path.join(work, 'p4-fit48.tar.gz');
    const made = run(['models', 'archive', '--models', 'models', '--member', 'p4-fit48', '--version', 'v1', '--out', archive]);
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    expect(made.stdout).toMatch(/^wrote .*p4-fit48\.tar\.gz \([\d.]+ MiB, 4 files\): p4-fit48\/v1\n$/);

    const verified = run(['models', 'verify', archive]);
    expect(verified.status).toBe(0);
    expect(verified.stdout).toContain('1 member versions verify: p4-fit48/v1');

    const store = path.join(work, 'store');
    const config = path.join(work, 'plankwatch.yaml');
    writeFileSync(config, stringify({ classify: { modelsDir: store, ensemble: path.join(store, 'ensemble.json') } }));
    const fetched = run(['models', 'fetch', archive, '-c', config]);
    expect(fetched.stderr).toBe('');
    expect(fetched.status).toBe(0);
    expect(fetched.stdout).toBe(`installed into ${store}: p4-fit48/v1\n`);
    expect(readFileSync(path.join(store, 'p4-fit48', 'v1', 'model.onnx')).equals(readFileSync(path.join(REPO_ROOT, 'models', 'p4-fit48', 'v1', 'model.onnx')))).toBe(true);
    const installed = run(['models', 'verify', '-c', config]);
    expect(installed.status).toBe(0);
    expect(installed.stdout).toContain('1 member versions verify: p4-fit48/v1');
    expect(run(['models', 'fetch', archive, '-c', config]).stdout).toBe('already there with the same files: p4-fit48/v1\n');

    // One byte of the compressed stream changed: the download is refused, the other store stays empty.
    const bytes = readFileSync(archive);
    bytes[bytes.length >> 1] ^= 0x55;
    const damaged = path.join(work, 'damaged.tar.gz');
    writeFileSync(damaged, bytes);
    const other = path.join(work, 'other');
    const refused = run(['models', 'fetch', damaged, '--models', other]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('PW_E_MODEL_ARCHIVE');
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(other)).toEqual([]);
    expect(run(['models', 'verify', damaged]).status).toBe(2);

    // An installed version changed on disk: verify names it and its file.
    writeFileSync(path.join(store, 'p4-fit48', 'v1', 'model.json'), '{}');
    const changed = run(['models', 'verify', '-c', config]);
    expect(changed.status).toBe(2);
    expect(changed.stderr).toContain('p4-fit48/v1 (model.json)');
  });

  it('asks for one --version per --member', () => {
    const r = run(['models', 'archive', '--models', 'models', '--member', 'p4-fit48', '--member', 'fit96', '--version', 'v1', '--out', path.join(work, 'x.tar')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('give one --version for each --member');
    expect(readdirSync(work).filter((n) => n.startsWith('x.tar'))).toEqual([]);
  });
});
