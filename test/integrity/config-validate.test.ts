// `plankwatch config validate` says "valid" only for a config that `plankwatch run` accepts: both
// run the same start-up checks (every secret and TLS file named is read, every ensemble member is
// found, its files opened, parsed and checksummed), validate also loads the models as the daemon
// does, and only the binding of ports is left to the start. A daemon whose model fails to load
// exits 2 with one coded log line and no stack, which the systemd unit does not restart.
// Real parts: the CLI and the daemon as child processes of the compiled dist/, a real member
// (models/vgg48/v1) copied into a temporary folder and damaged there.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { writeMeta, readMeta } from '../../src/classify/model-files.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { freePort } from '../helpers/ports.js';

const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');
const MEMBER = { name: 'vgg48', version: 'v1' };

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PLANKWATCH_LOG_LEVEL: 'info' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A folder with one real member, its ensemble file and a config naming them; `damage` edits it. */
async function setup(overrides: Record<string, Record<string, unknown>> = {}, damage?: (memberDir: string, root: string) => Promise<void> | void): Promise<{ root: string; config: string }> {
  const root = mkdtempSync(path.join(tmpdir(), 'pw-validate-'));
  const models = path.join(root, 'models');
  const memberDir = path.join(models, MEMBER.name, MEMBER.version);
  mkdirSync(path.dirname(memberDir), { recursive: true });
  cpSync(path.join(REPO_ROOT, 'models', MEMBER.name, MEMBER.version), memberDir, { recursive: true });
  writeFileSync(path.join(models, 'ensemble.json'), JSON.stringify({ version: 't1', voting: 'soft', members: [MEMBER] }));
  await damage?.(memberDir, root);
  const config: Record<string, Record<string, unknown>> = {
    instrument: { id: 'validate-cam' },
    ingest: { watchDir: path.join(root, 'incoming'), archiveDir: path.join(root, 'archive'), quarantineDir: path.join(root, 'quarantine') },
    classify: { ensemble: path.join(models, 'ensemble.json'), modelsDir: models, workers: 1 },
    store: { path: path.join(root, 'plankwatch.db') },
    publish: { embeddedPort: await freePort() },
    http: { port: 0 },
  };
  for (const [section, values] of Object.entries(overrides)) config[section] = { ...config[section], ...values };
  const file = path.join(root, 'plankwatch.yaml');
  writeFileSync(file, stringify(config));
  return { root, config: file };
}

/** The JSON log lines of a run; every line must parse (nothing unstructured on stdout). */
function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function expectNoStack(r: Result): void {
  expect(r.stdout + r.stderr).not.toMatch(/\n\s+at |\\n\s+at /);
}

describe('config validate refuses what run refuses', () => {
  beforeAll(() => {
    // The CLI is the compiled one: the test is meaningless against a stale dist/.
    expect(readFileSync(path.join(REPO_ROOT, 'dist/cli.js'), 'utf8')).toContain('config');
  });

  it('a complete, working config is valid, and validate writes nothing', async () => {
    const { root, config } = await setup();
    const r = cli(['config', 'validate', config]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('valid');
    const made = ['incoming', 'archive', 'quarantine', 'plankwatch.db'].filter((n) => {
      try {
        readFileSync(path.join(root, n));
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code !== 'ENOENT';
      }
    });
    expect(made).toEqual([]);
  }, 120_000);

  it('unreadable password, token and TLS files: every key named, and run refuses the same config', async () => {
    const { root, config } = await setup({
      publish: { mqttUrl: 'mqtts://127.0.0.1:8883', username: 'ship', passwordFile: '/nonexistent/mqtt-password', caFile: '/nonexistent/ca.pem' },
      http: { tokenFile: '/nonexistent/http-token' },
      sync: { enabled: true, url: 'mqtts://shore.invalid:8883', passwordFile: '/nonexistent/shore-password' },
    });
    // A folder where a certificate should be: exists, but cannot be read as a file.
    mkdirSync(path.join(root, 'cert.pem'));
    const withCert = readFileSync(config, 'utf8').replace('caFile: /nonexistent/ca.pem', `caFile: /nonexistent/ca.pem\n  certFile: ${path.join(root, 'cert.pem')}`);
    writeFileSync(config, withCert);

    const r = cli(['config', 'validate', config]);
    expect(r.status).toBe(2);
    expect(r.stdout).not.toContain('valid');
    for (const key of ['publish.passwordFile', 'publish.caFile', 'publish.certFile', 'http.tokenFile', 'sync.passwordFile']) expect(r.stderr).toContain(`${key}:`);
    expect(r.stderr).toContain('/nonexistent/mqtt-password');
    expect(r.stderr).toContain('PW_E_CONFIG_INVALID');
    expectNoStack(r);

    const run = cli(['run', '--config', config]);
    expect(run.status).toBe(2);
    const coded = logLines(run.stdout).filter((l) => l.code !== undefined);
    expect(coded).toHaveLength(1);
    expect(coded[0]!.code).toBe('PW_E_CONFIG_INVALID');
    for (const key of ['publish.passwordFile', 'publish.caFile', 'publish.certFile', 'http.tokenFile', 'sync.passwordFile']) expect(String(coded[0]!.msg)).toContain(`${key}:`);
    expectNoStack(run);
  }, 120_000);

  it('missing weights', async () => {
    const { config } = await setup({}, (dir) => rmSync(path.join(dir, 'weights.bin')));
    const r = cli(['config', 'validate', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('PW_E_MODEL_LOAD');
    expect(r.stderr).toMatch(/weights\.bin .*missing/);
    expect(r.stderr).toContain('classify.');
    const run = cli(['run', '--config', config]);
    expect(run.status).toBe(2);
    expectNoStack(run);
  }, 120_000);

  it('corrupt weights (one byte changed)', async () => {
    const { config } = await setup({}, (dir) => {
      const file = path.join(dir, 'weights.bin');
      const bytes = readFileSync(file);
      bytes[1000] = bytes[1000]! ^ 0xff;
      writeFileSync(file, bytes);
    });
    const r = cli(['config', 'validate', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('checksum mismatch');
    expect(cli(['run', '--config', config]).status).toBe(2);
  }, 120_000);

  it('truncated weights in a member without checksums', async () => {
    const { config } = await setup({}, async (dir) => {
      const meta = await readMeta(dir);
      delete meta.checksums;
      writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
      const file = path.join(dir, 'weights.bin');
      writeFileSync(file, readFileSync(file).subarray(0, 4096));
    });
    const r = cli(['config', 'validate', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/weights/);
    expect(r.stderr).toContain('bytes');
    expect(cli(['run', '--config', config]).status).toBe(2);
  }, 120_000);

  it('an ensemble member that does not exist', async () => {
    const { root, config } = await setup();
    writeFileSync(path.join(root, 'models', 'ensemble.json'), JSON.stringify({ version: 't2', voting: 'soft', members: [MEMBER, { name: 'nosuch', version: 'v9' }] }));
    const r = cli(['config', 'validate', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('nosuch/v9');
    expect(r.stderr).toContain('classify.modelsDir');
    const run = cli(['run', '--config', config]);
    expect(run.status).toBe(2);
    expectNoStack(run);
  }, 120_000);

  it('a model that fails to load: validate refuses it, run exits 2 with one coded line and no stack', async () => {
    // Files present and checksums right, but the network cannot be built.
    const { config } = await setup({}, async (dir) => {
      const file = path.join(dir, 'model.json');
      const model = readFileSync(file, 'utf8');
      const broken = model.replace(/"class_name":\s*"Conv2D"/, '"class_name": "NoSuchLayer"');
      expect(broken).not.toBe(model);
      writeFileSync(file, broken);
      await writeMeta(dir, await readMeta(dir));
    });
    const r = cli(['config', 'validate', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('PW_E_MODEL_LOAD');
    expect(r.stderr).toContain('NoSuchLayer');
    expectNoStack(r);

    const run = cli(['run', '--config', config]);
    expect(run.status).toBe(2);
    const lines = logLines(run.stdout);
    const coded = lines.filter((l) => l.code !== undefined);
    expect(coded).toHaveLength(1);
    expect(coded[0]).toMatchObject({ level: 60, code: 'PW_E_MODEL_LOAD' });
    expect(String(coded[0]!.msg)).toContain('NoSuchLayer');
    expect(lines.some((l) => l.err !== undefined)).toBe(false);
    expectNoStack(run);
  }, 120_000);
});

describe('systemd does not restart a daemon that exits 2', () => {
  it('the unit prevents restarts on exit status 2', () => {
    const unit = readFileSync(path.join(REPO_ROOT, 'systemd/plankwatch.service'), 'utf8');
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=.*\b2\b/m);
  });
});
