// The systemd unit and the vessel example config ship as they are documented.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { REPO_ROOT } from '../helpers/daemon.js';

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

describe('systemd/plankwatch.service', () => {
  const unit = directives(readFileSync(path.join(REPO_ROOT, 'systemd/plankwatch.service'), 'utf8'));
  it('is a notify service with a watchdog, restarts on failure, and runs as its own user', () => {
    expect(unit.get('Type')).toEqual(['notify']);
    expect(unit.get('NotifyAccess')).toEqual(['all']);
    expect(Number(unit.get('WatchdogSec')?.[0])).toBeGreaterThan(0);
    expect(unit.get('Restart')).toEqual(['on-failure']);
    expect(unit.get('User')).toEqual(['plankwatch']);
    expect(unit.get('StateDirectory')).toEqual(['plankwatch']);
  });
  it('is hardened without breaking V8', () => {
    expect(unit.get('ProtectSystem')).toEqual(['strict']);
    expect(unit.get('NoNewPrivileges')).toEqual(['yes']);
    expect(unit.get('ReadWritePaths')?.[0]).toContain('/var/lib/plankwatch');
    expect(unit.has('MemoryDenyWriteExecute')).toBe(false);
  });
  it('starts the daemon with the config file the README tells the technician to write', () => {
    expect(unit.get('ExecStart')?.[0]).toContain('run --config /etc/plankwatch/plankwatch.yaml');
  });
});

describe('config/vessel.example.yaml', () => {
  it('validates against the schema', () => {
    const config = loadConfig({ file: path.join(REPO_ROOT, 'config/vessel.example.yaml') });
    expect(config.publish.mqttUrl).toBe('mqtt://127.0.0.1:1883');
    expect(config.store.path).toBe('/var/lib/plankwatch/plankwatch.db');
  });
});
