import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { defaults, envName, loadConfig } from '../../src/config/config.js';
import { renderDefaultYaml } from '../../src/config/default-yaml.js';
import { PlankwatchError } from '../../src/errors.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

function writeTemp(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pw-config-'));
  const file = path.join(dir, 'c.yaml');
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): PlankwatchError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PlankwatchError) return err;
    throw err;
  }
  throw new Error('expected a PlankwatchError');
}

describe('config', () => {
  it('config/default.yaml is the schema rendered, and parses back to the defaults', () => {
    const shipped = readFileSync(path.join(repoRoot, 'config/default.yaml'), 'utf8');
    expect(shipped).toBe(renderDefaultYaml());
    expect(parseYaml(shipped)).toEqual(defaults());
  });

  it('embedded defaults need no file', () => {
    const config = loadConfig();
    expect(config.ingest.watchDir).toBe('data/incoming');
    expect(config.store.path).toBe('data/plankwatch.db');
    expect(config.publish.mqttUrl).toBe('');
    expect(config.publish.embeddedHost).toBe('127.0.0.1');
    expect(config.http.host).toBe('127.0.0.1');
  });

  it('a file overlays the defaults and the environment overrides the file', () => {
    const file = writeTemp('ingest:\n  watchDir: /cam\n  stableMs: 300\nclassify:\n  maxBatch: 8\n');
    const config = loadConfig({ file, env: { PLANKWATCH_CLASSIFY_MAX_BATCH: '16', PLANKWATCH_INGEST_USE_POLLING: 'true' } });
    expect(config.ingest.watchDir).toBe('/cam');
    expect(config.ingest.stableMs).toBe(300);
    expect(config.classify.maxBatch).toBe(16);
    expect(config.ingest.usePolling).toBe(true);
    expect(config.ingest.rescanIntervalS).toBe(60);
  });

  it('names the path of every error, unknown keys included', () => {
    const file = writeTemp('ingest:\n  watchDri: /cam\n  stableMs: -5\n  onProcessed: shred\nclassify:\n  maxBatch: "lots"\nbogus: 1\n');
    const err = errorOf(() => loadConfig({ file }));
    expect(err.code).toBe('PW_E_CONFIG_INVALID');
    expect(err.message).toContain('ingest.watchDri: unknown key');
    expect(err.message).toContain('ingest.stableMs: must be at least 50, got -5');
    expect(err.message).toContain('ingest.onProcessed: must be one of "leave", "archive", "delete", got "shred"');
    expect(err.message).toContain('classify.maxBatch: must be a number');
    expect(err.message).toContain('bogus: unknown key');
    expect(err.message).toContain('5 problem(s)');
  });

  it('rejects bad environment values naming the variable', () => {
    const err = errorOf(() => loadConfig({ env: { PLANKWATCH_HTTP_PORT: 'eighty' } }));
    expect(err.message).toContain('PLANKWATCH_HTTP_PORT (http.port): must be a number');
  });

  it('reports unreadable and malformed files as PW_E_CONFIG_READ', () => {
    expect(errorOf(() => loadConfig({ file: '/nonexistent/x.yaml' })).code).toBe('PW_E_CONFIG_READ');
    expect(errorOf(() => loadConfig({ file: writeTemp('ingest: [unclosed\n') })).code).toBe('PW_E_CONFIG_READ');
  });

  it('checks values that must fit elsewhere (topic levels, URLs)', () => {
    const file = writeTemp('instrument:\n  id: "isiis/1"\npublish:\n  mqttUrl: "http://x"\n');
    const err = errorOf(() => loadConfig({ file }));
    expect(err.message).toContain('instrument.id');
    expect(err.message).toContain('publish.mqttUrl');
  });

  it('derives environment names from schema paths', () => {
    expect(envName(['ingest', 'watchDir'])).toBe('PLANKWATCH_INGEST_WATCH_DIR');
    expect(envName(['publish', 'mqttUrl'])).toBe('PLANKWATCH_PUBLISH_MQTT_URL');
  });
});
