// Builders for the nav tests: a stage on a real SQLite file with the defaults of nav.* overridden.
import { join } from 'node:path';
import { defaults, type Config } from '../../src/config/index.js';
import { silentLogger } from '../../src/log.js';
import { NavStage, type NavPublish } from '../../src/nav/index.js';
import { Store } from '../../src/store/index.js';
import { tempDir } from '../store/helpers.js';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export function navConfig(over: DeepPartial<Config['nav']> = {}): Config['nav'] {
  const base = defaults().nav;
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = v && typeof v === 'object' ? merge(a[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
    return out;
  };
  return merge({ ...base, enabled: true }, over as Record<string, unknown>) as Config['nav'];
}

export interface Rig {
  dir: string;
  store: Store;
  stage: NavStage;
  published: { concentrations: unknown[]; profile: unknown[]; position: unknown[] };
  close(): Promise<void>;
}

/** A store on a temp file and a nav stage on it (not started). */
export function rig(over: DeepPartial<Config['nav']>, windowMs = 60_000): Rig {
  const { dir, cleanup } = tempDir('nav');
  const store = new Store({ path: join(dir, 'pw.db'), countsWindowMs: windowMs, logger: silentLogger() });
  store.open();
  const published = { concentrations: [] as unknown[], profile: [] as unknown[], position: [] as unknown[] };
  const publish: NavPublish = {
    concentrations: (p) => published.concentrations.push(p),
    profile: (p) => published.profile.push(p),
    position: (p) => published.position.push(p),
  };
  const stage = new NavStage({ config: navConfig(over), instrument: 'test-cam', countsWindowMs: windowMs, repository: store.navRepository(), logger: silentLogger(), publish });
  return {
    dir,
    store,
    stage,
    published,
    close: async () => {
      await stage.stop();
      store.close();
      cleanup();
    },
  };
}

export async function until<T>(fn: () => T | undefined | false | null, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
