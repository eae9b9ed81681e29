// The review page's files (plain HTML, CSS and JavaScript in ./page, no build step), read once.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** What the page needs to know from the configuration; embedded in the HTML as JSON. */
export interface PageSettings {
  pageSize: number;
  enlargedPx: number;
  chartHours: number;
  chartRefreshS: number;
  /** True when the server needs a token (the page then offers "log out"). */
  loginRequired: boolean;
}

const ASSET_TYPES: Record<string, string> = {
  'review.js': 'text/javascript; charset=utf-8',
  'review.css': 'text/css; charset=utf-8',
};

// Compiled into dist/review/, the files stay in src/review/page/: look beside this module, then there.
function pageDir(): string {
  const here = import.meta.dirname;
  for (const dir of [path.join(here, 'page'), path.join(here, '..', '..', 'src', 'review', 'page')]) {
    if (existsSync(path.join(dir, 'index.html'))) return dir;
  }
  throw new Error(`review page files not found next to ${here}`);
}

let cache: Map<string, string> | undefined;

function files(): Map<string, string> {
  if (!cache) {
    const dir = pageDir();
    cache = new Map(['index.html', 'login.html', ...Object.keys(ASSET_TYPES)].map((n) => [n, readFileSync(path.join(dir, n), 'utf8')]));
  }
  return cache;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function reviewPage(settings: PageSettings): string {
  const json = JSON.stringify(settings).replace(/</g, '\\u003c');
  return files().get('index.html')!.replace('__SETTINGS__', json);
}

export function loginPage(error?: string): string {
  return files().get('login.html')!.replace('__ERROR__', error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '');
}

export function reviewAsset(name: string): { type: string; body: string } | undefined {
  const type = ASSET_TYPES[name];
  return type ? { type, body: files().get(name)! } : undefined;
}
