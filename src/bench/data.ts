// Where the benchmarks read labelled images: PLANKWATCH_NDSB_DIR (its train/ folder when it has
// one; `npm run bench` sets it to the development copy of the NDSB data), else the fixtures
// committed with the tests, so a bench runs on any checkout.
import { existsSync } from 'node:fs';
import path from 'node:path';

export function benchDataDir(repoRoot: string): string {
  const fromEnv = process.env.PLANKWATCH_NDSB_DIR;
  if (fromEnv && existsSync(fromEnv)) return existsSync(path.join(fromEnv, 'train')) ? path.join(fromEnv, 'train') : fromEnv;
  return path.join(repoRoot, 'test', 'fixtures', 'ndsb');
}
