// nav.* in `plankwatch config validate` and the start checks: each problem names its key.
import { describe, expect, it } from 'vitest';
import { preflight } from '../../src/daemon/preflight.js';
import { defaults } from '../../src/config/index.js';
import { navConfigProblems } from '../../src/nav/index.js';
import { navConfig } from './helpers.js';

describe('nav config checks', () => {
  it('names each key at fault, and nothing when the stage is off', async () => {
    const bad = navConfig({
      udp: { ports: '10110,abc' },
      tcp: { endpoints: 'nohostport' },
      ctd: { pattern: '^\\$PCTD,(\\d+)' },
      time: { filenamePattern: '(?<year>\\d{4}' },
      volume: { source: 'swept', fovWidthM: 0.5 },
    });
    expect(navConfigProblems(bad).map((p) => p.key).sort()).toEqual(['nav.ctd.pattern', 'nav.time.filenamePattern', 'nav.udp.ports', 'nav.volume.depthOfFieldM']);
    expect(navConfigProblems({ ...bad, enabled: false })).toEqual([]);
    expect(navConfigProblems(navConfig({ tcp: { endpoints: 'nohostport' } }))).toEqual([{ key: 'nav.tcp.endpoints', detail: expect.stringMatching(/host:port/) }]);
    const c = { ...defaults(), nav: bad };
    const problems = await preflight(c, { loadModels: false });
    expect(problems.filter((p) => p.key.startsWith('nav.')).map((p) => p.code)).toEqual(['PW_E_CONFIG_INVALID', 'PW_E_CONFIG_INVALID', 'PW_E_CONFIG_INVALID', 'PW_E_CONFIG_INVALID']);
  });
});
