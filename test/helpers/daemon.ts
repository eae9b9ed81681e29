// The daemon as a child process on a temporary folder, exactly as a technician starts it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');

export interface DaemonDirs {
  root: string;
  incoming: string;
  archive: string;
  quarantine: string;
  db: string;
  config: string;
}

/** A temp folder with a config file; `overrides` are merged per section. */
export function daemonDirs(overrides: Record<string, Record<string, unknown>>): DaemonDirs {
  const root = mkdtempSync(path.join(tmpdir(), 'pw-daemon-'));
  const dirs = {
    root,
    incoming: path.join(root, 'incoming'),
    archive: path.join(root, 'archive'),
    quarantine: path.join(root, 'quarantine'),
    db: path.join(root, 'plankwatch.db'),
    config: path.join(root, 'plankwatch.yaml'),
  };
  mkdirSync(dirs.incoming, { recursive: true });
  const config: Record<string, Record<string, unknown>> = {
    instrument: { id: 'test-cam' },
    ingest: { watchDir: dirs.incoming, archiveDir: dirs.archive, quarantineDir: dirs.quarantine, stableMs: 300, rescanIntervalS: 5 },
    classify: { ensemble: path.join(REPO_ROOT, 'models/ensemble.json'), modelsDir: path.join(REPO_ROOT, 'models') },
    store: { path: dirs.db, countsWindowS: 86400 },
    http: { port: 0 },
  };
  for (const [section, values] of Object.entries(overrides)) config[section] = { ...config[section], ...values };
  writeFileSync(dirs.config, stringify(config));
  return dirs;
}

export interface DaemonProcess {
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

export function startDaemon(configFile: string, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const child = spawn(process.execPath, [CLI, 'run', '--config', configFile], {
    cwd: REPO_ROOT,
    env: { ...process.env, PLANKWATCH_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text, unparsed: true };
      }
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.predicate(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  return {
    child,
    logs,
    exited,
    waitForLog(predicate, timeoutMs = 60_000) {
      const found = logs.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`log line not seen in ${timeoutMs} ms; stderr:\n${stderr}\nlast logs:\n${logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
        }, timeoutMs);
        waiters.push({
          predicate,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`daemon exited (${code}) before the log line; stderr:\n${stderr}\nlast logs:\n${logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
        });
      });
    },
  };
}

export async function until<T>(fn: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
