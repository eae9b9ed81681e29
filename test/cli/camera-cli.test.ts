// The camera profile and EcoTaxa training through the command line, as a lab uses them: the
// shipped ensemble classifies a dark-field camera's images (made from the fixtures) as it does
// the originals once `camera:` says so, and `train` / `evaluate` read an EcoTaxa export.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { darkFieldColour, darkFieldGray } from '../helpers/cameras.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { fixtureImages } from '../helpers/images.js';

const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');
const work = mkdtempSync(path.join(tmpdir(), 'pw-camera-cli-'));
const run = (args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, PLANKWATCH_CACHE_DIR: path.join(work, 'cache') }, timeout: 240_000 });
const lines = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; label: string; areaPx: number; areaUm2?: number; polarity: string });

describe('a dark-field camera on the command line', () => {
  it('classify: the dark-field images get the originals\' labels and areas once camera: says dark-field', async () => {
    const images = fixtureImages().filter((_, i) => i % 12 === 0);
    const originals: string[] = [];
    const dark: string[] = [];
    for (const img of images) {
      const o = path.join(work, `${img.label}-${img.name}`);
      writeFileSync(o, img.bytes);
      originals.push(o);
      const d = path.join(work, `${img.label}-${img.name}.dark.png`);
      writeFileSync(d, await darkFieldGray(img.bytes));
      dark.push(d);
    }
    const config = path.join(work, 'dark.yaml');
    writeFileSync(config, 'camera:\n  polarity: dark-field\n  pixelSizeUm: 10\n');
    const before = lines(run(['classify', '--json', ...originals]).stdout);
    const after = run(['classify', '--json', '--config', config, ...dark]);
    expect(after.status).toBe(0);
    const got = lines(after.stdout);
    expect(got.map((l) => l.label)).toEqual(before.map((l) => l.label));
    expect(got.map((l) => l.areaPx)).toEqual(before.map((l) => l.areaPx));
    for (const l of got) {
      expect(l.polarity).toBe('dark-field');
      expect(l.areaUm2).toBe(l.areaPx * 100);
    }
    const wrong = lines(run(['classify', '--json', ...dark]).stdout);
    expect(wrong.filter((l, i) => l.label === before[i]!.label).length).toBeLessThan(images.length / 2);
  });

  it('train and evaluate read an EcoTaxa export: validated objects, the camera recorded in meta.json', async () => {
    const exportDir = path.join(work, 'export');
    mkdirSync(path.join(exportDir, 'images'), { recursive: true });
    const rows = ['img_file_name\tobject_id\tobject_annotation_status\tobject_annotation_category', '[t]\t[t]\t[t]\t[t]'];
    for (const [i, img] of fixtureImages().entries()) {
      const name = `images/o${i}.png`;
      writeFileSync(path.join(exportDir, name), await darkFieldGray(img.bytes));
      rows.push(`${name}\to${i}\t${i % 10 === 0 ? 'predicted' : 'validated'}\t${img.label}`);
    }
    writeFileSync(path.join(exportDir, 'ecotaxa_tow.tsv'), '\uFEFF' + rows.join('\r\n') + '\r\n');
    const models = path.join(work, 'models');
    const train = run(['train', '--data', exportDir, '--models', models, '--member', 'tiny', '--version', 'dark', '--arch', 'pw-tiny-32', '--epochs', '1', '--batch-size', '8', '--polarity', 'dark-field', '--pixel-size', '12.5', '--augment', 'none', '--val-fraction', '0.25']);
    expect(train.status, train.stderr).toBe(0);
    expect(train.stderr).toMatch(/EcoTaxa export: 1 table\(s\), 96 objects \((10 predicted, 86 validated|86 validated, 10 predicted)\); 86 kept; left out: 10 for their status/);
    const meta = JSON.parse(readFileSync(path.join(models, 'tiny', 'dark', 'meta.json'), 'utf8')) as { classes: string[]; camera: unknown };
    expect(meta.camera).toEqual({ polarity: 'dark-field', colour: 'gray', pixelSizeUm: 12.5, canonical: 'bright-field' });
    expect(meta.classes).toHaveLength(8);
    writeFileSync(path.join(models, 'ensemble.json'), JSON.stringify({ version: 't', voting: 'soft', members: [{ name: 'tiny', version: 'dark' }] }));
    const evaluate = run(['evaluate', '--data', exportDir, '--ensemble', path.join(models, 'ensemble.json'), '--tta', 'identity', '--polarity', 'dark-field', '--pixel-size', '40', '--out', path.join(work, 'eval')]);
    // 12.5 µm against 40 µm: the member (it keeps organisms at their size) refuses the camera.
    expect(evaluate.status).toBe(1);
    expect(evaluate.stderr).toContain('PW_E_CAMERA_PROFILE');
    const ok = run(['evaluate', '--data', exportDir, '--ensemble', path.join(models, 'ensemble.json'), '--tta', 'identity', '--polarity', 'dark-field', '--pixel-size', '12', '--out', path.join(work, 'eval')]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/tiny\/dark/);
  });

  it('train --channels 3 reads R, G and B from a gray member; evaluate refuses it on a gray camera', async () => {
    const data = path.join(work, 'tinted');
    for (const img of fixtureImages()) {
      mkdirSync(path.join(data, img.label), { recursive: true });
      writeFileSync(path.join(data, img.label, `${img.name}.png`), await darkFieldColour(img.bytes));
    }
    const models = path.join(work, 'colour-models');
    const common = ['--data', data, '--models', models, '--member', 'tiny', '--arch', 'pw-tiny-32', '--epochs', '1', '--batch-size', '8', '--polarity', 'dark-field', '--colour', 'rgb', '--augment', 'none', '--val-fraction', '0.25'];
    const gray = run(['train', ...common, '--version', 'gray']);
    expect(gray.status, gray.stderr).toBe(0);
    const colour = run(['train', ...common, '--version', 'rgb', '--from', path.join(models, 'tiny', 'gray'), '--channels', '3']);
    expect(colour.status, colour.stderr).toBe(0);
    expect(colour.stderr).toContain('its first convolution is repeated over R, G and B (divided by 3)');
    const meta = JSON.parse(readFileSync(path.join(models, 'tiny', 'rgb', 'meta.json'), 'utf8')) as { input: unknown; parent: string };
    expect(meta).toMatchObject({ input: { size: 32, channels: 3 }, parent: 'tiny/gray' });
    const ensemble = path.join(models, 'colour.json');
    writeFileSync(ensemble, JSON.stringify({ version: 'c', voting: 'soft', members: [{ name: 'tiny', version: 'rgb' }] }));
    const evaluate = (colourArg: string) => run(['evaluate', '--data', data, '--ensemble', ensemble, '--tta', 'identity,rot45', '--polarity', 'dark-field', '--colour', colourArg, '--out', path.join(work, `eval-${colourArg}`)]);
    const ok = evaluate('rgb');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/tiny\/rgb/);
    const refused = evaluate('gray');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('PW_E_CAMERA_PROFILE');
    expect(refused.stderr).toContain('reads colour');
    const noColour = run(['train', ...common.map((a) => (a === 'rgb' ? 'gray' : a)), '--version', 'x', '--channels', '3']);
    expect(noColour.status).not.toBe(0);
    expect(noColour.stderr).toContain('--channels 3 reads R, G and B');
  });
});
