// The nav stage through real parts: UDP and TCP sockets on this machine, a SQLite file, frames
// stored by the Store as the daemon stores them.
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withChecksum } from '../../src/nav/index.js';
import type { UdpInput } from '../../src/nav/inputs/index.js';
import { classified, fixtureFiles, incoming } from '../store/helpers.js';
import { rig, until, type Rig } from './helpers.js';

const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
const hms = (t: number) => new Date(t).toISOString().slice(11, 19).replace(/:/g, '');
const dmy = (t: number) => { const d = new Date(t).toISOString(); return `${d.slice(8, 10)}${d.slice(5, 7)}${d.slice(2, 4)}`; };
const ddm = (v: number, width: number) => {
  const a = Math.abs(v);
  const deg = Math.floor(a);
  return `${String(deg).padStart(width, '0')}${((a - deg) * 60).toFixed(4).padStart(7, '0')}`;
};
/** An RMC at t for a position. */
const rmc = (t: number, lat: number, lon: number, sog = 5) =>
  withChecksum(`GPRMC,${hms(t)},A,${ddm(lat, 2)},${lat < 0 ? 'S' : 'N'},${ddm(lon, 3)},${lon < 0 ? 'W' : 'E'},${sog.toFixed(1)},90.0,${dmy(t)},,,A`);
const stamp = (t: number) => new Date(t).toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, '.$1Z');

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

/** Stores the tiny fixtures as frames captured at the given times (names carry the times). */
function storeFrames(rg: Rig, times: number[], labels: string[], dir?: string) {
  const fx = fixtureFiles();
  const files = times.map((t, i) => {
    const f = incoming(fx[i % fx.length]!, `${stamp(t)}_${i}.jpg`);
    // The tiny fixtures repeat after five: make each content distinct by its name in the hash.
    const sha = (f.sha256.slice(0, 56) + i.toString(16).padStart(8, '0'));
    return { ...f, sha256: sha, path: dir ? join(dir, f.relPath) : f.path };
  });
  rg.store.recordClassified(files.map((f, i) => classified(f, labels[i % labels.length]!, T0)));
  return files;
}

async function sendUdp(port: number, lines: string[]): Promise<void> {
  const s = createSocket('udp4');
  for (const line of lines) await new Promise<void>((res, rej) => s.send(`${line}\r\n`, port, '127.0.0.1', (e) => (e ? rej(e) : res())));
  s.close();
}

describe('nav stage over UDP', () => {
  it('tags ROIs that arrived before their nav data once it comes, across the antimeridian and a dropout', async () => {
    r = rig({ udp: { ports: '0', host: '127.0.0.1' }, maxGapS: 10, maxHoldS: 30, flushMs: 50 });
    await r.stage.start();
    const port = (r.stage.inputList[0] as UdpInput).boundPort;
    // ROIs at T0+5 s (between two fixes 10 s apart, crossing 180), T0+25 s (after the last fix
    // before a dropout: held), T0+200 s (far from any fix: missing).
    const files = storeFrames(r, [T0 + 5_000, T0 + 25_000, T0 + 200_000], ['copepod']);
    r.stage.tagStored(files);
    await r.stage.settled();
    const nav = r.store.navRepository();
    const ids = [...nav.frameIds(files.map((f) => f.sha256)).values()];
    expect(ids.map((id) => nav.roiPosition(id)!.quality)).toEqual(['missing', 'missing', 'missing']);
    await sendUdp(port, [rmc(T0, 10, 179.9), 'garbage', `${rmc(T0 + 10_000, 10.1, -179.9).slice(0, -2)}00`, rmc(T0 + 10_000, 10.1, -179.9)]);
    await until(() => r!.stage.stats.sentences >= 2 && r!.stage.stats.bad >= 2, 5_000, 'two fixes and two bad lines');
    await r.stage.settled();
    const [a, b, c] = ids.map((id) => nav.roiPosition(id)!);
    expect(a).toMatchObject({ quality: 'interpolated', gapS: 10, timeSource: 'filename', tMs: T0 + 5_000 });
    expect(a!.lat).toBeCloseTo(10.05, 6);
    expect(Math.abs(a!.lon!)).toBeCloseTo(180, 6); // halfway from 179.9 E to 179.9 W is 180, not 0
    expect(b).toMatchObject({ quality: 'held', gapS: 15 });
    expect(b!.lon).toBeCloseTo(-179.9, 6);
    expect(c).toMatchObject({ quality: 'missing', lat: null });
    expect(r.stage.stats).toMatchObject({ bad: 2, fixes: 2 });
  });
});

describe('nav stage and the clock', () => {
  it('keeps fixes that go back in time at their own times, counts the jump, and tags by time', async () => {
    r = rig({ udp: { ports: '0', host: '127.0.0.1' }, flushMs: 20 });
    await r.stage.start();
    const port = (r.stage.inputList[0] as UdpInput).boundPort;
    await sendUdp(port, [rmc(T0 + 10_000, 10.1, 20.1), rmc(T0, 10, 20), rmc(T0 + 20_000, 10.2, 20.2)]);
    await until(() => r!.stage.stats.sentences >= 3, 5_000, 'three fixes');
    const files = storeFrames(r, [T0 + 5_000, T0 + 15_000], ['copepod']);
    r.stage.tagStored(files);
    await r.stage.settled();
    const nav = r.store.navRepository();
    const [a, b] = [...nav.frameIds(files.map((f) => f.sha256)).values()].map((id) => nav.roiPosition(id)!);
    expect(a).toMatchObject({ quality: 'interpolated', gapS: 10 });
    expect(a!.lat).toBeCloseTo(10.05, 6);
    expect(b!.lat).toBeCloseTo(10.15, 6);
    expect(r.stage.stats.clockJumps).toBe(1);
    expect(r.stage.health()).toMatchObject({ ok: true });
  });
});

describe('nav stage over TCP', () => {
  it('reports /health failing while its only input cannot connect', async () => {
    const closed = await new Promise<number>((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    r = rig({ tcp: { endpoints: `127.0.0.1:${closed}`, reconnectMaxS: 1 } });
    await r.stage.start();
    await until(() => r!.stage.stats.inputs[`tcp:127.0.0.1:${closed}`] === false, 5_000, 'the input down');
    expect(r.stage.health()).toMatchObject({ ok: false, detail: expect.stringMatching(/^PW_E_NAV_INPUT/) });
  });

  it('reconnects to a multiplexer that drops the connection, and reads CTD lines from it', async () => {
    const sockets: Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    const port = (server.address() as { port: number }).port;
    try {
      r = rig({ tcp: { endpoints: `127.0.0.1:${port}`, reconnectMaxS: 1 }, flushMs: 50, ctd: { fields: '$PCTD pressure=1 temperature=2 salinity=3', latitude: 30 } });
      await r.stage.start();
      await until(() => sockets.length === 1, 5_000, 'first connection');
      sockets[0]!.write(`${rmc(T0, 30, 0)}\r\n$PCTD,10000,2.5,34.7\r\n`);
      await until(() => r!.stage.stats.envSamples + r!.stage.stats.fixes >= 2 || (r!.stage.flush(), false), 5_000, 'first samples');
      sockets[0]!.destroy();
      await until(() => sockets.length === 2, 10_000, 'reconnection');
      sockets[1]!.write(`${rmc(T0 + 1_000, 30, 0.001)}\r\n`);
      await until(() => (r!.stage.flush(), r!.stage.stats.fixes >= 2), 5_000, 'fix after reconnection');
      // The CTD line has no time: it takes the RMC's before it, plus the moment between them.
      const env = r.store.navRepository().envBracket('depth_m', T0 + 500);
      expect(env.before?.value).toBeCloseTo(9712.653, 3); // pressure to depth at the fix's latitude
      expect(r.stage.stats.inputs[`tcp:127.0.0.1:${port}`]).toBe(true);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe('a synthetic tow with known volume and counts', () => {
  it('gives individuals per m³ exactly, per class, per window and per 5 m depth bin', async () => {
    r = rig({ volume: { source: 'sidecar' }, concentrations: { depthBinM: 5 } }, 60_000);
    const dir = r.dir;
    // Six ROIs in one minute: four at 2 m (0-5 m bin), two at 7 m (5-10 m); each image sampled 0.25 m³.
    const times = [1, 2, 3, 4, 5, 6].map((s) => T0 + s * 1000);
    const depths = [2, 2, 2, 2, 7, 7];
    const labels = ['copepod', 'copepod', 'copepod', 'diatom', 'copepod', 'copepod'];
    const files = storeFrames(r, times, labels, dir);
    files.forEach((f, i) => writeFileSync(join(dir, f.relPath.replace(/\.jpg$/, '.json')), JSON.stringify({ depth_m: depths[i], volume_m3: 0.25, lat: 45, lon: -30 })));
    await r.stage.start();
    for (const f of files) r.stage.noteFile(f);
    r.stage.tagStored(files);
    await r.stage.settled();
    await r.stage.stop();
    const rows = (bin: number) => r!.store.navRepository().concentrations(60_000, T0, bin).map((c) => [c.depthMinM, c.label, c.count, c.volumeM3, c.perM3]);
    expect(rows(5)).toEqual([
      [0, '*', 4, 1, 4],
      [0, 'copepod', 3, 1, 3],
      [0, 'diatom', 1, 1, 1],
      [5, '*', 2, 0.5, 4],
      [5, 'copepod', 2, 0.5, 4],
    ]);
    expect(rows(0)).toEqual([
      [2, '*', 6, 1.5, 6 / 1.5],
      [2, 'copepod', 5, 1.5, 5 / 1.5],
      [2, 'diatom', 1, 1.5, 1 / 1.5],
    ]);
    const profile = r.published.profile.at(-1) as { bins: { depthMinM: number; perM3: Record<string, number> }[] };
    expect(profile.bins.map((b) => [b.depthMinM, b.perM3])).toEqual([[0, { copepod: 3, diatom: 1 }], [5, { copepod: 4 }]]);
    const msg = r.published.concentrations.at(-1) as { lat: number; lon: number; perM3: Record<string, number>; total: number };
    expect(msg).toMatchObject({ lat: 45, lon: -30, total: 6, perM3: { copepod: 5 / 1.5, diatom: 1 / 1.5 } });
  });
});
