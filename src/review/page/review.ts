// The review page: a queue of uncertain ROIs to confirm, correct or mark dubious, all by keyboard,
// and a live chart of counts per class. Browser TypeScript, talking to the JSON API; `npm run build`
// compiles it (tsconfig.json beside it) to dist/review/page/review.js, which the server serves,
// with the modules it imports (api.js, chart.js, dom.js).
import { api, ApiError, messageOf } from './api.js';
import { loadChart } from './chart.js';
import { $, el } from './dom.js';

// ---------- what the page reads from the server ----------

/** The settings the server embeds in the HTML (PageSettings in ../page.ts). */
interface Settings {
  pageSize: number;
  enlargedPx: number;
  chartHours: number;
  chartRefreshS: number;
  loginRequired: boolean;
  /** ROIs cut from whole camera frames: each card links to its frame with the ROI's box drawn. */
  cameraFrames?: boolean;
}

type LabelStatus = 'predicted' | 'validated' | 'dubious';
type LabelAction = 'confirm' | 'correct' | 'dubious';

interface LabelState {
  status: LabelStatus;
  label: string;
  user: string | null;
  at: number | null;
}

/** One ROI of GET /api/review/queue (ReviewItem in ../review-types.ts). */
interface ReviewItem {
  sha256: string;
  relPath: string;
  width: number | null;
  height: number | null;
  classifiedAt: number;
  prediction: { margin: number; disagreement: number; topK: { label: string; probability: number }[] };
  state: LabelState;
}

interface QueuePage {
  items: ReviewItem[];
  total: number;
  totalCapped: boolean;
}

interface ClassInfo {
  name: string;
  known: boolean;
}

/** A label change as POST /api/labels returns it in a bulk result. */
interface LabelRecord {
  status: LabelStatus;
  label: string;
  user: string;
  at: number;
}

interface BulkResult {
  applied: number;
  failed: number;
  results: ({ sha256: string; ok: true; record: LabelRecord } | { sha256: string; ok: false })[];
}

const settings = JSON.parse($('settings').textContent ?? '') as Settings;
const state = {
  items: [] as ReviewItem[],
  selected: 0,
  offset: 0,
  total: 0,
  totalCapped: false,
  classes: [] as ClassInfo[],
  busy: false,
};

// ---------- helpers ----------

function say(message: string, isError = false): void {
  const s = $('status');
  s.textContent = message;
  s.classList.toggle('error', isError);
}

function user(): string | null {
  const input = $<HTMLInputElement>('user');
  const name = input.value.trim();
  if (!name) {
    say('Type your name in "Reviewer" first: every label records who gave it.', true);
    input.focus();
    return null;
  }
  localStorage.setItem('plankwatch.reviewer', name);
  return name;
}

const pct = (p: number): string => `${(p * 100).toFixed(1)}%`;

// ---------- queue ----------

function queueUrl(): string {
  const q = new URLSearchParams();
  const label = $<HTMLInputElement>('filter-label').value.trim();
  if (label) q.set('label', label);
  const since = $<HTMLSelectElement>('filter-since').value;
  if (since) q.set('since', since);
  const until = $<HTMLInputElement>('filter-until').value;
  if (until) q.set('until', new Date(until).toISOString());
  q.set('status', $<HTMLSelectElement>('filter-status').value);
  q.set('limit', String(settings.pageSize));
  q.set('offset', String(state.offset));
  return `/api/review/queue?${q}`;
}

async function loadQueue(keepSelection = false): Promise<void> {
  try {
    const page = await api<QueuePage>('GET', queueUrl());
    state.items = page.items;
    state.total = page.total;
    state.totalCapped = page.totalCapped;
    if (!keepSelection || state.selected >= state.items.length) state.selected = 0;
    render();
    say(state.items.length ? '' : 'Nothing to review with these filters.');
  } catch (err) {
    say(messageOf(err), true);
  }
}

function render(): void {
  const grid = $('grid');
  grid.replaceChildren(...state.items.map((item, i) => card(item, i)));
  const from = state.items.length ? state.offset + 1 : 0;
  const to = state.offset + state.items.length;
  $('page-info').textContent = `ROIs ${from}–${to} of ${state.total}${state.totalCapped ? '+' : ''}`;
  $<HTMLButtonElement>('prev-page').disabled = state.offset === 0;
  select(state.selected, false);
}

function card(item: ReviewItem, index: number): HTMLElement {
  const w = item.width || 0;
  const h = item.height || 0;
  const src = `/api/frames/${item.sha256}/image`;
  const side = settings.enlargedPx;
  const scale = w && h ? Math.min(side / w, side / h) : 1;
  const gone = () => el('div', { class: 'gone', text: 'image no longer on disk' });
  const real = el('img', { class: 'real', src, alt: `ROI ${item.relPath} at real size`, width: String(w || ''), height: String(h || '') });
  const big = el('img', { class: 'big', src, alt: '', width: String(Math.round(w * scale) || side), height: String(Math.round(h * scale) || side) });
  real.addEventListener('error', () => real.replaceWith(gone()));
  big.addEventListener('error', () => big.replaceWith(gone()));
  const probs = el('ol', { class: 'probs' },
    ...item.prediction.topK.slice(0, 3).map((c) =>
      el('li', {}, el('span', { class: 'bar', style: `width:${Math.max(1, c.probability * 100)}%` }), el('span', { class: 'name', text: c.label, title: c.label }), el('span', { class: 'p', text: pct(c.probability) }))),
  );
  const node = el('article', { class: `roi ${item.state.status}`, tabindex: '-1', 'data-sha256': item.sha256, 'data-index': String(index) },
    el('div', { class: 'pics' }, el('div', { class: 'real-box' }, real), el('div', { class: 'big-box', style: `width:${side}px;height:${side}px` }, big)),
    el('div', { class: 'caption', text: `${w}×${h} px · disagreement ${pct(item.prediction.disagreement)} · margin ${pct(item.prediction.margin)} · ${new Date(item.classifiedAt).toLocaleString()}`, title: item.relPath }),
    settings.cameraFrames ? el('a', { class: 'in-frame', href: `/api/frames/${item.sha256}/camera-frame/image`, target: '_blank', rel: 'noopener', text: 'show in its camera frame' }) : null,
    probs,
    el('div', { class: 'state' }, stateLine(item.state)),
    el('div', { class: 'actions' },
      el('button', { type: 'button', onclick: () => void act(index, 'confirm') }, 'Confirm ', el('kbd', { text: 'c' })),
      el('button', { type: 'button', onclick: () => openPicker(index) }, 'Correct ', el('kbd', { text: 'x' })),
      el('button', { type: 'button', onclick: () => void act(index, 'dubious') }, 'Dubious ', el('kbd', { text: 'd' })),
    ),
  );
  node.addEventListener('click', (e) => {
    if ((e.target as HTMLElement).tagName !== 'BUTTON') select(index);
  });
  return node;
}

function stateLine(s: LabelState): DocumentFragment {
  const frag = document.createDocumentFragment();
  frag.append(el('b', { text: s.status }), ` ${s.label}`);
  if (s.user) frag.append(` · ${s.user}, ${new Date(s.at ?? 0).toLocaleTimeString()}`);
  return frag;
}

function select(index: number, focus = true): void {
  const cards = document.querySelectorAll<HTMLElement>('.roi');
  if (!cards.length) {
    $<HTMLButtonElement>('bulk-confirm').disabled = true;
    return;
  }
  state.selected = Math.max(0, Math.min(cards.length - 1, index));
  cards.forEach((c, i) => c.classList.toggle('selected', i === state.selected));
  const node = cards[state.selected]!;
  if (focus) {
    node.focus({ preventScroll: true });
    node.scrollIntoView({ block: 'nearest' });
  }
  updateBulkButton();
}

function pendingOfClass(label: string): ReviewItem[] {
  return state.items.filter((it) => it.state.status === 'predicted' && it.state.label === label);
}

function updateBulkButton(): void {
  const item = state.items[state.selected];
  const n = item ? pendingOfClass(item.state.label).length : 0;
  const b = $<HTMLButtonElement>('bulk-confirm');
  b.disabled = n === 0;
  b.textContent = item && n ? `Confirm all ${n} ${item.state.label} on this page` : 'Confirm page';
}

function applyState(sha256: string, newState: LabelState): void {
  const i = state.items.findIndex((it) => it.sha256 === sha256);
  if (i < 0) return;
  const updated = { ...state.items[i]!, state: newState };
  state.items[i] = updated;
  const old = document.querySelector(`.roi[data-index="${i}"]`);
  if (old) old.replaceWith(card(updated, i));
}

function nextPending(from: number): number {
  for (let i = from + 1; i < state.items.length; i++) if (state.items[i]!.state.status === 'predicted') return i;
  return Math.min(from + 1, state.items.length - 1);
}

async function act(index: number, action: LabelAction, label?: string, newClass?: boolean): Promise<void> {
  const item = state.items[index];
  const who = user();
  if (!item || !who || state.busy) return;
  state.busy = true;
  try {
    const body: { sha256: string; action: LabelAction; user: string; label?: string; newClass?: boolean } = { sha256: item.sha256, action, user: who };
    if (action === 'confirm') body.label = item.state.label;
    if (label !== undefined) body.label = label;
    if (newClass) body.newClass = true;
    const res = await api<{ state: LabelState }>('POST', '/api/labels', body);
    applyState(item.sha256, res.state);
    say(`${action === 'confirm' ? 'Confirmed' : action === 'correct' ? 'Corrected to' : 'Marked dubious:'} ${res.state.label}`);
    if (newClass) await loadClasses();
    select(nextPending(index));
  } catch (err) {
    say(messageOf(err), true);
    if (err instanceof ApiError && err.code === 'PW_E_REVIEW_CONFLICT') await loadQueue(true);
  } finally {
    state.busy = false;
  }
}

async function bulkConfirm(): Promise<void> {
  const item = state.items[state.selected];
  const who = user();
  if (!item || !who || state.busy) return;
  const items = pendingOfClass(item.state.label);
  if (!items.length) return;
  state.busy = true;
  try {
    const res = await api<BulkResult>('POST', '/api/labels/bulk', {
      user: who,
      items: items.map((it) => ({ sha256: it.sha256, action: 'confirm', label: it.state.label })),
    });
    for (const r of res.results) {
      if (r.ok) applyState(r.sha256, { status: r.record.status, label: r.record.label, user: r.record.user, at: r.record.at });
    }
    say(`Confirmed ${res.applied} ${item.state.label}${res.failed ? `; ${res.failed} changed meanwhile, reload to see them` : ''}`, res.failed > 0);
    select(state.selected);
  } catch (err) {
    say(messageOf(err), true);
  } finally {
    state.busy = false;
  }
}

// ---------- class picker (type to search; a new class needs a second Enter) ----------

const picker = { index: -1, matches: [] as ClassInfo[], active: 0, pendingNew: null as string | null };

async function loadClasses(): Promise<void> {
  try {
    state.classes = (await api<{ classes: ClassInfo[] }>('GET', '/api/classes')).classes;
    $('class-options').replaceChildren(...state.classes.map((c) => el('option', { value: c.name })));
  } catch (err) {
    say(messageOf(err), true);
  }
}

function openPicker(index: number): void {
  const item = state.items[index];
  if (!item || !user()) return;
  picker.index = index;
  picker.pendingNew = null;
  $('picker-for').textContent = `(now ${item.state.label})`;
  $<HTMLInputElement>('picker-input').value = '';
  renderPicker();
  $<HTMLDialogElement>('picker').showModal();
  $('picker-input').focus();
}

function renderPicker(): void {
  const q = $<HTMLInputElement>('picker-input').value.trim().toLowerCase();
  const words = q.split(/[\s_]+/).filter(Boolean);
  picker.matches = state.classes
    .filter((c) => words.every((w) => c.name.toLowerCase().includes(w)))
    .sort((a, b) => Number(!a.name.toLowerCase().startsWith(q)) - Number(!b.name.toLowerCase().startsWith(q)) || a.name.localeCompare(b.name));
  picker.active = Math.min(picker.active, Math.max(0, picker.matches.length - 1));
  $('picker-list').replaceChildren(
    ...picker.matches.map((c, i) =>
      el('li', { role: 'option', class: i === picker.active ? 'active' : '', onclick: () => choose(c.name) }, c.name, c.known ? null : el('small', { text: 'new' }))),
  );
  const active = $('picker-list').children[picker.active];
  if (active) active.scrollIntoView({ block: 'nearest' });
  const typed = $<HTMLInputElement>('picker-input').value.trim().replace(/\s+/g, '_');
  const newBox = $('picker-new');
  if (picker.pendingNew) {
    newBox.hidden = false;
    newBox.textContent = `"${picker.pendingNew}" is not a class the ensemble knows. Press Enter again to create it, Esc to cancel.`;
  } else if (!picker.matches.length && typed) {
    newBox.hidden = false;
    newBox.textContent = `No class matches. Enter: introduce "${typed}" as a new class (asks to confirm).`;
  } else newBox.hidden = true;
}

function choose(name: string, isNew = false): void {
  const index = picker.index;
  $<HTMLDialogElement>('picker').close();
  void act(index, 'correct', name, isNew);
}

function pickerKey(e: KeyboardEvent): void {
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    const n = picker.matches.length;
    if (n) picker.active = (picker.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
    renderPicker();
  } else if (e.key === 'Enter') {
    e.preventDefault();
    const typed = $<HTMLInputElement>('picker-input').value.trim().replace(/\s+/g, '_');
    if (picker.pendingNew) {
      if (typed === picker.pendingNew) choose(picker.pendingNew, true);
      else {
        picker.pendingNew = null;
        renderPicker();
      }
      return;
    }
    const exact = state.classes.find((c) => c.name === typed);
    if (exact) return choose(exact.name);
    if (picker.matches.length) return choose(picker.matches[picker.active]!.name);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(typed)) {
      $('picker-new').hidden = false;
      $('picker-new').textContent = 'A class name is a letter or digit, then letters, digits, "_", "-" or ".".';
      return;
    }
    picker.pendingNew = typed;
    renderPicker();
  }
}

// ---------- keyboard ----------

function onKey(e: KeyboardEvent): void {
  if ($<HTMLDialogElement>('picker').open) return;
  if ($<HTMLDialogElement>('help').open) return;
  const t = e.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
  if (typing) {
    if (e.key === 'Escape') t.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (t instanceof HTMLButtonElement && (e.key === 'Enter' || e.key === ' ')) return;
  const i = state.selected;
  switch (e.key) {
    case 'j': case 'ArrowRight': case 'ArrowDown': select(i + 1); break;
    case 'k': case 'ArrowLeft': case 'ArrowUp': select(i - 1); break;
    case 'c': case 'Enter': void act(i, 'confirm'); break;
    case 'C': void bulkConfirm(); break;
    case 'x': openPicker(i); break;
    case 'd': void act(i, 'dubious'); break;
    case 'n': nextPage(); break;
    case 'p': prevPage(); break;
    case 'r': void loadQueue(true); break;
    case '/': $('filter-label').focus(); break;
    case '?': $<HTMLDialogElement>('help').showModal(); break;
    default: return;
  }
  e.preventDefault();
}

function nextPage(): void {
  // Reviewed ROIs leave the "to review" queue, so the next page starts after the ones skipped here.
  const skipped = $<HTMLSelectElement>('filter-status').value === 'predicted' ? state.items.filter((it) => it.state.status === 'predicted').length : state.items.length;
  if (state.offset + skipped >= state.total && state.items.length < settings.pageSize) return;
  state.offset += skipped;
  void loadQueue();
}

function prevPage(): void {
  state.offset = Math.max(0, state.offset - settings.pageSize);
  void loadQueue();
}

// ---------- start ----------

function start(): void {
  $<HTMLInputElement>('user').value = localStorage.getItem('plankwatch.reviewer') ?? '';
  $('chart-hours').textContent = String(settings.chartHours);
  $('logout').hidden = !settings.loginRequired;
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    state.offset = 0;
    void loadQueue();
    (document.activeElement as HTMLElement).blur();
  });
  $('prev-page').addEventListener('click', prevPage);
  $('next-page').addEventListener('click', nextPage);
  $('bulk-confirm').addEventListener('click', () => void bulkConfirm());
  $('help-button').addEventListener('click', () => $<HTMLDialogElement>('help').showModal());
  $('picker-input').addEventListener('input', () => {
    picker.active = 0;
    picker.pendingNew = null;
    renderPicker();
  });
  $('picker-input').addEventListener('keydown', pickerKey);
  document.addEventListener('keydown', onKey);
  void loadClasses();
  void loadQueue();
  void loadChart(settings.chartHours);
  setInterval(() => void loadChart(settings.chartHours), settings.chartRefreshS * 1000);
}

start();
