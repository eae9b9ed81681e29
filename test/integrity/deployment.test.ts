// The shipped deployment runs as written: systemd/plankwatch.service with
// config/vessel.example.yaml starts, fine-tunes and promotes, and `npm start` stops on SIGTERM.
//
// No systemd runs this machine's services (PID 1 is not systemd), so the unit is checked with
// `systemd-analyze verify`, and the daemon is started the way the unit starts it: the example
// config as written (its /var/lib/plankwatch, /data/camera and /opt/plankwatch/models moved into a
// temporary folder), the unit's Environment= lines, CREDENTIALS_DIRECTORY and STATE_DIRECTORY set
// as systemd sets them, the working directory read-only, and, when the test runs as root, as an
// unprivileged user (nobody) like User=plankwatch. The shipped models are a read-only folder; the
// state folder is the only writable one. The broker is a real one (aedes) that requires the
// password from the credential.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Aedes } from 'aedes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { readMeta, verifyChecksums } from '../../src/classify/model-files.js';
import { runTraining } from '../../src/learn/train-run.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { FIXTURE_DIR, fixtureImages } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { tinyTrainOptions } from '../helpers/training.js';

const UNIT_FILE = path.join(REPO_ROOT, 'systemd/plankwatch.service');
const EXAMPLE = path.join(REPO_ROOT, 'config/vessel.example.yaml');
const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');
const PASSWORD = 'correct horse battery staple';

/** key -> values of a unit file's [Service] (and other) directives, comments left out. */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    out.set(line.slice(0, eq), [...(out.get(line.slice(0, eq)) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const unit = directives(readFileSync(UNIT_FILE, 'utf8'));
const unitEnv = Object.fromEntries((unit.get('Environment') ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
const example = parseYaml(readFileSync(EXAMPLE, 'utf8')) as { classify: Record<string, string>; publish: Record<string, string> };

const systemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));

describe('systemd/plankwatch.service', () => {
  it.skipIf(!systemdAnalyze)('passes `systemd-analyze verify` without a warning', () => {
    // verify also checks that ExecStart's program exists: point it at this machine's node.
    const dir = mkdtempSync(path.join(tmpdir(), 'pw-unit-'));
    const copy = path.join(dir, 'plankwatch.service');
    writeFileSync(copy, readFileSync(UNIT_FILE, 'utf8').replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
    const r = spawnSync(systemdAnalyze!, ['verify', copy], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('loads the credential the example config reads', () => {
    const loads = (unit.get('LoadCredential') ?? []).map((l) => l.split(':')[0]);
    expect(loads).toContain('mqtt-password');
    expect(example.publish.passwordFile).toBe('$CREDENTIALS_DIRECTORY/mqtt-password');
  });

  it('keeps the model store and the cache in folders systemd makes writable, the shipped models as the read-only base', () => {
    const state = `/var/lib/${unit.get('StateDirectory')![0]}`;
    const cache = `/var/cache/${unit.get('CacheDirectory')![0]}`;
    expect(unitEnv.PLANKWATCH_CLASSIFY_MODELS_DIR!.startsWith(`${state}/`)).toBe(true);
    expect(path.dirname(unitEnv.PLANKWATCH_CLASSIFY_ENSEMBLE!)).toBe(unitEnv.PLANKWATCH_CLASSIFY_MODELS_DIR);
    expect(unitEnv.PLANKWATCH_CLASSIFY_BASE_MODELS_DIR).toBe(path.join(unit.get('WorkingDirectory')![0]!, 'models'));
    expect(unitEnv.PLANKWATCH_CACHE_DIR).toBe(cache);
    // The example config says the same, so that `config validate` checks what the service uses.
    expect(example.classify).toMatchObject({ modelsDir: unitEnv.PLANKWATCH_CLASSIFY_MODELS_DIR, ensemble: unitEnv.PLANKWATCH_CLASSIFY_ENSEMBLE, baseModelsDir: unitEnv.PLANKWATCH_CLASSIFY_BASE_MODELS_DIR });
    expect(unit.get('ProtectSystem')).toEqual(['strict']);
    expect(unit.get('RestartPreventExitStatus')?.[0]).toMatch(/\b2\b/);
  });
});

// ---- The daemon as the unit starts it ----

interface Logged {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  output: () => string;
  exited: Promise<number | string>;
}

function spawnLogged(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd: string; uid?: number; gid?: number; detached?: boolean }): Logged {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let text = '';
  let buffer = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // npm's own lines
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, logs, output: () => text.split('\n').slice(-40).join('\n'), exited };
}

/** Polls `fn` (sync or async) until it gives a value other than undefined or false. */
async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitForLog(p: Logged, predicate: (l: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
  return until(
    () => {
      if (p.child.exitCode !== null) throw new Error(`exited (${p.child.exitCode}) before ${what}`);
      return p.logs.find(predicate);
    },
    timeoutMs,
    what,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${p.output()}`);
  });
}

/** Every file under a folder with its size and modification time. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => path.join(e.parentPath, e.name))
    .map((f) => `${path.relative(dir, f)} ${statSync(f).size} ${statSync(f).mtimeMs}`)
    .sort();
}

function userId(name: string): number | undefined {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

const isRoot = process.getuid?.() === 0;
const nobody = isRoot ? userId('nobody') : undefined;

describe('the example config under the unit', () => {
  let root: string;
  let dirs: { state: string; camera: string; base: string; cache: string; creds: string };
  let broker: { port: number; logins: { username: string; ok: boolean }[]; close: () => Promise<void> };

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'pw-deploy-'));
    chmodSync(root, 0o755);
    dirs = { state: path.join(root, 'var/lib/plankwatch'), camera: path.join(root, 'data/camera'), base: path.join(root, 'opt/plankwatch/models'), cache: path.join(root, 'var/cache/plankwatch'), creds: path.join(root, 'run/credentials/plankwatch.service') };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    mkdirSync(path.join(dirs.camera, 'rois'));
    // The shipped models: a small member trained here on the fixture images, then made read-only.
    process.env.PLANKWATCH_CACHE_DIR = path.join(root, 'train-cache');
    await runTraining({ ...tinyTrainOptions(dirs.base, 'plankwatch train (deployment test base)'), version: 'v1', data: FIXTURE_DIR });
    writeFileSync(path.join(dirs.base, 'ensemble.json'), JSON.stringify({ version: 'shipped-1', voting: 'soft', members: [{ name: 'tiny', version: 'v1' }] } satisfies EnsembleFile));
    spawnSync('chmod', ['-R', 'a-w', path.join(root, 'opt')]);
    // What systemd creates for the service user: the state, cache and credentials folders.
    writeFileSync(path.join(dirs.creds, 'mqtt-password'), `${PASSWORD}\n`, { mode: 0o400 });
    if (nobody !== undefined) {
      for (const d of [dirs.state, dirs.camera, path.join(dirs.camera, 'rois'), dirs.cache, dirs.creds, path.join(dirs.creds, 'mqtt-password')]) chownSync(d, nobody, nobody);
    }
    // The ship's broker, with a password.
    const logins: { username: string; ok: boolean }[] = [];
    const aedes = await Aedes.createBroker({
      authenticate: (_client, username, password, done) => {
        const ok = username === 'plankwatch' && password?.toString() === PASSWORD;
        logins.push({ username: username ?? '', ok });
        done(null, ok);
      },
    });
    const server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    broker = {
      port: (server.address() as AddressInfo).port,
      logins,
      close: () => new Promise<void>((resolve) => aedes.close(() => server.close(() => resolve()))),
    };
  }, 180_000);

  afterAll(async () => {
    await broker?.close();
    if (root) spawnSync('chmod', ['-R', 'u+w', path.join(root, 'opt')]);
  });

  /** The example config with its paths moved into the temporary root, and the unit's environment likewise. */
  function asInstalled(): { config: string; env: NodeJS.ProcessEnv } {
    const move = (s: string) =>
      s
        .replaceAll('/var/lib/plankwatch', dirs.state)
        .replaceAll('/var/cache/plankwatch', dirs.cache)
        .replaceAll('/data/camera', dirs.camera)
        .replaceAll('/opt/plankwatch/models', dirs.base);
    const config = path.join(root, 'plankwatch.yaml');
    writeFileSync(config, move(readFileSync(EXAMPLE, 'utf8')));
    chmodSync(config, 0o644);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8' };
    for (const [k, v] of Object.entries(unitEnv)) env[k] = move(v);
    env.CREDENTIALS_DIRECTORY = dirs.creds;
    env.STATE_DIRECTORY = dirs.state;
    env.CACHE_DIRECTORY = dirs.cache;
    return { config, env };
  }

  it('`config validate` (as the service user, with its credentials) finds the example config valid', () => {
    const { config, env } = asInstalled();
    const r = spawnSync(process.execPath, [CLI, 'config', 'validate', config], { cwd: REPO_ROOT, env, encoding: 'utf8', ...(nobody !== undefined ? { uid: nobody, gid: nobody } : {}) });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);

  it('starts as the service user, logs in with the credential, fine-tunes and promotes into the state folder; the shipped models stay untouched', async () => {
    const { config, env } = asInstalled();
    const baseBefore = snapshot(dirs.base);
    // Only what a test needs to differ: the broker's port, a free HTTP port, one inference thread on
    // the WebAssembly backend, and a quick fine-tuning run whose gate always passes (the gate
    // itself is tested elsewhere).
    Object.assign(env, {
      PLANKWATCH_PUBLISH_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`,
      PLANKWATCH_HTTP_PORT: '0',
      PLANKWATCH_CLASSIFY_WORKERS: '1',
      PLANKWATCH_CLASSIFY_BACKEND: 'wasm',
      PLANKWATCH_INGEST_STABLE_MS: '100',
      PLANKWATCH_FINETUNE_MIN_NEW_LABELS: '0',
      PLANKWATCH_FINETUNE_SCHEDULE_HOURS: '0',
      PLANKWATCH_FINETUNE_EPOCHS: '1',
      PLANKWATCH_FINETUNE_REPLAY_DATA: FIXTURE_DIR,
      PLANKWATCH_FINETUNE_REPLAY_PER_CLASS: '4',
      PLANKWATCH_FINETUNE_EVAL_DATA: FIXTURE_DIR,
      PLANKWATCH_FINETUNE_MIN_EVAL_IMAGES: '1',
      PLANKWATCH_FINETUNE_MAX_ACCURACY_DROP: '1',
      PLANKWATCH_FINETUNE_MAX_RECALL_DROP: '1',
      PLANKWATCH_FINETUNE_POLL_ENSEMBLE_MS: '200',
    });
    const daemon = spawnLogged(process.execPath, [CLI, 'run', '--config', config], { cwd: REPO_ROOT, env, ...(nobody !== undefined ? { uid: nobody, gid: nobody } : {}) });
    try {
      const ready = await waitForLog(daemon, (l) => l.msg === 'plankwatch ready', 120_000, 'plankwatch ready');
      expect(ready.ensemble).toBe('shipped-1');
      if (nobody !== undefined) {
        const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8'))![1];
        expect(Number(uid)).toBe(nobody);
      }
      // The password came from the credential; nobody logged in with a wrong one.
      await until(() => broker.logins.some((l) => l.ok) || undefined, 20_000, 'the daemon to log in to the broker');
      expect(broker.logins.filter((l) => !l.ok)).toEqual([]);

      // The store: shipped versions linked, the shipped ensemble copied, nothing else.
      const store = path.join(dirs.state, 'models');
      expect(lstatSync(path.join(store, 'tiny', 'v1')).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path.join(store, 'tiny', 'v1'))).toBe(path.join(dirs.base, 'tiny', 'v1'));
      expect((JSON.parse(readFileSync(path.join(store, 'ensemble.json'), 'utf8')) as EnsembleFile).version).toBe('shipped-1');

      // The camera delivers the fixture images; a scientist labels each with its true class.
      const images = fixtureImages();
      for (const img of images) writeFileSync(path.join(dirs.camera, 'rois', `${img.label}-${img.name}`), img.bytes);
      const api = ready.http as string;
      type Item = { sha256: string; prediction: { label: string } };
      let queue: Item[] = [];
      await until(
        async () => {
          queue = ((await (await fetch(`${api}/api/review/queue?limit=500`)).json()) as { items: Item[] }).items;
          return queue.length === images.length || undefined;
        },
        120_000,
        'every image classified',
      );
      const truth = new Map(images.map((i) => [i.sha256, i.label]));
      for (const item of queue) {
        const label = truth.get(item.sha256)!;
        const res = await fetch(`${api}/api/labels`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sha256: item.sha256, action: item.prediction.label === label ? 'confirm' : 'correct', label, user: 'scientist' }),
        });
        expect(res.status).toBe(200);
      }

      // A fine-tuning run writes its candidate and promotes it, all inside the state folder.
      const started = await fetch(`${api}/api/finetune/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(started.status).toBe(202);
      const { runId } = (await started.json()) as { runId: number };
      type Run = { status: string; candidateVersion: string; reason: string };
      let run: Run | undefined;
      await until(
        async () => {
          run = (await (await fetch(`${api}/api/finetune/runs/${runId}`)).json()) as Run;
          return run.status !== 'running' || undefined;
        },
        300_000,
        'the fine-tuning run to finish',
      );
      expect(run!.status, `${run!.reason}\n${daemon.output()}`).toBe('promoted');
      const candidate = run!.candidateVersion;
      const active = JSON.parse(readFileSync(path.join(store, 'ensemble.json'), 'utf8')) as EnsembleFile;
      expect(active.version).toBe(candidate);
      const memberDir = path.join(store, 'tiny', candidate);
      expect(lstatSync(memberDir).isDirectory()).toBe(true);
      const meta = await readMeta(memberDir);
      expect(meta.parent).toBe('tiny/v1');
      expect(await verifyChecksums(memberDir, meta)).toEqual([]);
      const history = readFileSync(path.join(store, 'ensembles', 'history.jsonl'), 'utf8');
      expect(history).toContain(`"version":"${candidate}"`);
      expect(existsSync(path.join(store, 'ensembles', 'shipped-1.json'))).toBe(true);
      await waitForLog(daemon, (l) => l.msg === `ensemble ${candidate} active`, 30_000, 'the promoted ensemble to be swapped in');
      expect(snapshot(dirs.base)).toEqual(baseBefore);

      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).toBe(0);
    } finally {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    }
  }, 600_000);
});

describe('npm start', () => {
  it('SIGTERM to npm reaches the daemon: it stops cleanly instead of running on orphaned', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pw-npm-start-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PLANKWATCH_INGEST_WATCH_DIR: path.join(root, 'incoming'),
      PLANKWATCH_INGEST_ARCHIVE_DIR: path.join(root, 'archive'),
      PLANKWATCH_INGEST_QUARANTINE_DIR: path.join(root, 'quarantine'),
      PLANKWATCH_STORE_PATH: path.join(root, 'plankwatch.db'),
      PLANKWATCH_PUBLISH_EMBEDDED_PORT: String(await freePort()),
      PLANKWATCH_HTTP_PORT: '0',
      PLANKWATCH_CLASSIFY_WORKERS: '1',
      PLANKWATCH_CLASSIFY_BACKEND: 'wasm',
      PLANKWATCH_FINETUNE_ENABLED: 'false',
    };
    const npm = spawnLogged('npm', ['start', '--silent'], { cwd: REPO_ROOT, env });
    let daemonPid: number | undefined;
    try {
      await waitForLog(npm, (l) => l.msg === 'plankwatch ready', 120_000, 'plankwatch ready');
      daemonPid = descendants(npm.child.pid!).find((pid) => commandLine(pid).includes('bin/plankwatch.js\0run'));
      expect(daemonPid, descendants(npm.child.pid!).map(commandLine).join('\n')).toBeDefined();
      npm.child.kill('SIGTERM');
      await npm.exited;
      await until(() => !alive(daemonPid!) || undefined, 30_000, `the daemon (pid ${daemonPid}) to exit after SIGTERM to npm`);
      expect(npm.logs.some((l) => l.msg === 'stopped' && l.ok === true)).toBe(true);
    } finally {
      if (daemonPid !== undefined && alive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
      if (npm.child.exitCode === null) npm.child.kill('SIGKILL');
    }
  }, 180_000);
});

/** Processes below `pid` (children, their children, …), from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) {
      if (parent !== p) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
