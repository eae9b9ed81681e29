// The review page's files, each read once: HTML and CSS as they are in src/review/page/, and the
// script page/review.ts as `npm run build` compiles it, to dist/review/page/review.js.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PlankwatchError } from '../errors.js';

/** What the page needs to know from the configuration; embedded in the HTML as JSON. */
export interface PageSettings {
  pageSize: number;
  enlargedPx: number;
  chartHours: number;
  chartRefreshS: number;
  /** True when the server needs a token (the page then offers "log out"). */
  loginRequired: boolean;
  /** True when ROIs are cut from whole camera frames (ingest.mode "frames"): each card links to its frame. */
  cameraFrames?: boolean;
}

const ASSET_TYPES: Record<string, string> = {
  'review.js': 'text/javascript; charset=utf-8',
  'ocean.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'review.css': 'text/css; charset=utf-8',
};

/**
 * Where a page file is. Run from dist/review/, the script is beside this module (page/) and the
 * HTML and CSS in src/review/page/; run from src/review/ (tests), the other way round.
 */
function pageFile(name: string): string {
  const here = import.meta.dirname;
  const root = path.join(here, '..', '..');
  const dirs = [path.join(here, 'page'), path.join(root, 'src', 'review', 'page'), path.join(root, 'dist', 'review', 'page')];
  const found = dirs.map((dir) => path.join(dir, name)).find((candidate) => existsSync(candidate));
  if (!found) throw new PlankwatchError('PW_E_INTERNAL', `the review page file ${name} is in none of ${dirs.join(', ')}; run \`npm run build\` to compile the page's script`);
  return found;
}

const cache = new Map<string, string>();

function file(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(pageFile(name), 'utf8');
    cache.set(name, text);
  }
  return text;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function reviewPage(settings: PageSettings): string {
  const json = JSON.stringify(settings).replace(/</g, '\\u003c');
  return file('index.html').replace('__SETTINGS__', json);
}

export function loginPage(error?: string): string {
  return file('login.html').replace('__ERROR__', error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '');
}

export function reviewAsset(name: string): { type: string; body: string } | undefined {
  const type = ASSET_TYPES[name];
  return type ? { type, body: file(name) } : undefined;
}
