// The review API (JSON under /api) and the review page (/review), as one fastify plugin for the
// HttpServer. Errors answer `{ error: { code, message } }` with a status that fits the code.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, PlankwatchError } from '../errors.js';
import type { HttpPlugin, RouteAccess } from '../http/server.js';
import type { Logger } from '../log.js';
import type { CountsSince } from '../store/store.js';
import { AuthThrottle, checkBearer, logWrongToken } from '../http/auth.js';
import { BrowserSessions, LOGIN_PATH, sessionFromCookie } from './browser-auth.js';
import { ImageArchive, ingestRoots } from '../ingest/image-archive.js';
import { findImage, type ImageDirs } from './images.js';
import { drawRoiInFrame, roiInFrame } from './camera-frame-view.js';
import type { RoiPlace } from '../store/index.js';
import { loginPage, reviewAsset, reviewPage, type PageSettings } from './page.js';
import { parseBulkBody, parseCountsQuery, parseLabelBody, parseQueueQuery, parseSha256 } from './parse.js';
import type { ReviewStore } from './review-store.js';
import type { LabelRecord } from './review-types.js';

export interface ReviewRoutesOptions {
  review: ReviewStore;
  /** Predicted counts per window (the store's). */
  counts: { countsSince(sinceMs: number): CountsSince };
  /** Width of one counts window (store.countsWindowS), ms. */
  countsWindowMs: number;
  images: ImageDirs;
  page: Omit<PageSettings, 'loginRequired'>;
  /**
   * When the server requires a token: the token, how long a browser login lasts, and the server's
   * lockout of addresses that guess wrong (HttpServer.authThrottle; default: one of its own).
   */
  auth?: { token: string; sessionMs: number; throttle?: AuthThrottle };
  /** The navigation stage's depth profile and ship's track (nav.enabled); absent: GET /api/nav says so. */
  nav?: { profile(hours: number): unknown; track(hours: number, maxPoints: number): unknown };
  /** ingest.mode "frames": where each ROI lies in its camera frame (the store's camera frame tables). */
  cameraFrames?: { placeOf(roiSha256: string): RoiPlace | undefined };
  logger: Logger;
  now?: () => number;
}

const STATUS_OF: Partial<Record<string, number>> = {
  PW_E_REVIEW_REQUEST: 400,
  PW_E_REVIEW_AUTH: 401,
  PW_E_REVIEW_NOT_FOUND: 404,
  PW_E_REVIEW_IMAGE_GONE: 404,
  // The file where the frame's image should be is not its bytes: never sent.
  PW_E_IMAGE_MISMATCH: 409,
  PW_E_IMAGE_LINK: 409,
  PW_E_IMAGE_SPECIAL: 409,
  PW_E_REVIEW_CONFLICT: 409,
  PW_E_REVIEW_NEW_CLASS: 422,
};

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** The fastify plugin serving the review API and page. */
export function reviewRoutes(options: ReviewRoutesOptions): HttpPlugin {
  const { review, logger: log } = options;
  const now = options.now ?? Date.now;
  const sessions = options.auth ? new BrowserSessions({ token: options.auth.token, sessionMs: options.auth.sessionMs }) : undefined;
  const settings: PageSettings = { ...options.page, loginRequired: sessions !== undefined, cameraFrames: options.cameraFrames !== undefined };
  /** Images are read by content: a file that merely has the frame's name is never sent. */
  const images = new ImageArchive({ roots: ingestRoots(options.images), logger: log });
  const throttle = options.auth?.throttle ?? new AuthThrottle();

  /** A live browser session: what every route of this plugin admits besides the bearer token. */
  const hasSession = (request: FastifyRequest): boolean => sessions?.valid(sessionFromCookie(request.headers.cookie)) === true;
  /** Signed in: no login required, a live session, or the bearer token itself (scripts). */
  const signedIn = (request: FastifyRequest): boolean =>
    !options.auth || hasSession(request) || checkBearer(request.headers.authorization, options.auth.token);
  /** For the login form and the page itself, which shows the form to whoever is not signed in. */
  const open: { config: RouteAccess } = { config: { authorize: () => true } };
  /** The login and logout forms post plain HTML forms (the server still checks their Origin). */
  const openForm: { config: RouteAccess } = { config: { authorize: () => true, form: true } };
  const form: { config: RouteAccess } = { config: { form: true } };

  return async (app) => {
    // Every route of this plugin also admits a browser session (the server's guard admits the
    // bearer token); the login form and the page declare themselves open.
    app.addHook('onRoute', (route) => {
      const config = (route.config ?? {}) as RouteAccess;
      if (!config.authorize) route.config = { ...config, authorize: hasSession };
    });

    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
      if (err instanceof PlankwatchError) {
        const status = STATUS_OF[err.code] ?? 500;
        if (status >= 500) log.error({ err, code: err.code, path: request.url }, 'review request failed');
        return reply.code(status).send(errorBody(err.code, err.message));
      }
      const status = err.statusCode ?? 500;
      if (status < 500) {
        // fastify's own 4xx: unparseable JSON, wrong content type, body too large.
        return reply.code(status).send(errorBody('PW_E_REVIEW_REQUEST', `${ERRORS.PW_E_REVIEW_REQUEST.message} ${err.message}`));
      }
      log.error({ err, code: 'PW_E_INTERNAL', method: request.method, path: request.url }, 'review request failed');
      return reply.code(500).send(errorBody('PW_E_INTERNAL', ERRORS.PW_E_INTERNAL.message));
    });

    const logRecord = (r: LabelRecord) =>
      log.info({ sha256: r.sha256, action: r.action, status: r.status, label: r.label, previousLabel: r.previousLabel, user: r.user, eventId: r.eventId }, `label ${r.action}: ${r.label}`);

    // ---- JSON API ----

    app.get('/api/review/queue', async (request) => review.queue(parseQueueQuery(request.query as Record<string, unknown>, now())));

    app.get('/api/frames/:sha256', async (request) => {
      const sha256 = parseSha256((request.params as { sha256: string }).sha256);
      const frame = review.frame(sha256);
      if (!frame) throw new PlankwatchError('PW_E_REVIEW_NOT_FOUND', `sha256 ${sha256}.`);
      return frame;
    });

    app.get('/api/frames/:sha256/image', async (request, reply) => {
      const sha256 = parseSha256((request.params as { sha256: string }).sha256);
      const frame = review.frame(sha256);
      if (!frame) throw new PlankwatchError('PW_E_REVIEW_NOT_FOUND', `sha256 ${sha256}.`);
      const image = await findImage(images, sha256, review.sourcePaths(sha256), frame.format);
      if (!image) {
        throw new PlankwatchError(
          'PW_E_REVIEW_IMAGE_GONE',
          `${frame.relPath} is in neither the watch folder nor the archive folder (deleted after classification, or moved away).`,
        );
      }
      return reply.type(image.contentType).header('cache-control', 'private, max-age=86400, immutable').send(image.bytes);
    });

    // An ROI cut from a whole camera frame (ingest.mode "frames"): its place, and the frame with its box drawn.
    const placeOf = (sha256: string): RoiPlace => {
      const place = options.cameraFrames?.placeOf(sha256);
      if (!place) throw new PlankwatchError('PW_E_REVIEW_NOT_FOUND', `sha256 ${sha256} is not an ROI cut from a camera frame.`);
      return place;
    };
    app.get('/api/frames/:sha256/camera-frame', async (request) => roiInFrame(placeOf(parseSha256((request.params as { sha256: string }).sha256))));
    app.get('/api/frames/:sha256/camera-frame/image', async (request, reply) => {
      const place = placeOf(parseSha256((request.params as { sha256: string }).sha256));
      const raw = (request.query as { width?: string }).width;
      const width = raw === undefined ? 1024 : Number(raw);
      if (!Number.isInteger(width) || width < 64 || width > 8192) throw new PlankwatchError('PW_E_REVIEW_REQUEST', `width must be a whole number of pixels from 64 to 8192, got ${raw}.`);
      const found = await images.read(place.cameraFrame.sha256, [place.cameraFrame.relPath]);
      if (!found) throw new PlankwatchError('PW_E_REVIEW_IMAGE_GONE', `the camera frame ${place.cameraFrame.relPath} is in neither the watch folder nor the archive folder (ingest.onProcessed "delete" removes it).`);
      return reply.type('image/jpeg').header('cache-control', 'private, max-age=86400, immutable').send(await drawRoiInFrame(found.bytes, place, width));
    });

    app.post('/api/labels', async (request) => {
      const record = review.label(parseLabelBody(request.body));
      logRecord(record);
      return { record, state: review.current(record.sha256) };
    });

    app.post('/api/labels/bulk', async (request) => {
      const results = review.labelMany(parseBulkBody(request.body));
      for (const r of results) if (r.record) logRecord(r.record);
      return { applied: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length, results };
    });

    app.get('/api/labels/:sha256/history', async (request) => {
      const sha256 = parseSha256((request.params as { sha256: string }).sha256);
      const state = review.current(sha256);
      if (!state) throw new PlankwatchError('PW_E_REVIEW_NOT_FOUND', `sha256 ${sha256}.`);
      return { sha256, state, events: review.history(sha256) };
    });

    app.get('/api/classes', async () => ({ classes: review.classes() }));

    // The live depth profile of concentrations and the track, over the latest `hours` of data.
    app.get('/api/nav', async (request) => {
      const asked = Number((request.query as { hours?: string }).hours);
      const hours = Number.isFinite(asked) && asked > 0 ? Math.min(asked, 168) : settings.chartHours;
      if (!options.nav) return { enabled: false, hours };
      return { enabled: true, hours, profile: options.nav.profile(hours), track: options.nav.track(hours, 2000) };
    });

    app.get('/api/counts', async (request) => {
      const at = now();
      const q = parseCountsQuery(request.query as Record<string, unknown>, at);
      const windowMs = options.countsWindowMs;
      const bucketMs = q.bucketS === undefined ? windowMs : Math.max(windowMs, Math.ceil((q.bucketS * 1000) / windowMs) * windowMs);
      const c = options.counts.countsSince(q.since);
      const buckets = new Map<number, { start: number; end: number; total: number; counts: Record<string, number> }>();
      for (const w of c.windows) {
        const start = Math.floor(w.windowStart / bucketMs) * bucketMs;
        let b = buckets.get(start);
        if (!b) buckets.set(start, (b = { start, end: start + bucketMs, total: 0, counts: {} }));
        b.total += w.total;
        for (const [label, n] of Object.entries(w.counts)) b.counts[label] = (b.counts[label] ?? 0) + n;
      }
      return {
        since: c.since,
        until: at,
        windowMs,
        bucketMs,
        total: c.total,
        totals: c.totals,
        buckets: [...buckets.values()],
        validated: review.validatedCounts({ sinceMs: q.since }),
      };
    });

    // ---- the page ----

    app.get('/review', open, async (request, reply) => {
      const html = signedIn(request) ? reviewPage(settings) : loginPage();
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
    });
    app.get('/', open, async (_request, reply) => reply.redirect('/review'));
    app.get('/review/', open, async (_request, reply) => reply.redirect('/review'));
    app.get('/review/assets/:name', async (request, reply) => {
      const asset = reviewAsset((request.params as { name: string }).name);
      if (!asset) return reply.code(404).send(errorBody('PW_E_REVIEW_REQUEST', 'No such asset.'));
      return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
    });

    app.get(LOGIN_PATH, open, async (_request, reply) => {
      if (!sessions) return reply.redirect('/review');
      return reply.type('text/html; charset=utf-8').send(loginPage());
    });
    app.post(LOGIN_PATH, openForm, async (request: FastifyRequest, reply: FastifyReply) => {
      if (!sessions) return reply.redirect('/review', 303);
      // While the address is locked out the token is not even looked at (a right one included).
      const waitMs = throttle.lockedForMs(request.ip);
      if (waitMs > 0) {
        const seconds = Math.ceil(waitMs / 1000);
        return reply
          .code(429)
          .header('retry-after', String(seconds))
          .type('text/html; charset=utf-8')
          .send(loginPage(`${ERRORS.PW_E_HTTP_AUTH_LOCKED.message} Try again in ${seconds} s.`));
      }
      const body = (request.body ?? {}) as Record<string, unknown>;
      const token = typeof body.token === 'string' ? body.token.trim() : '';
      if (token === '' || !sessions.checkToken(token)) {
        logWrongToken(log, 'PW_E_REVIEW_AUTH', request.ip, throttle.wrong(request.ip), 'review login refused');
        return reply.code(401).type('text/html; charset=utf-8').send(loginPage(ERRORS.PW_E_REVIEW_AUTH.message));
      }
      throttle.right(request.ip);
      const id = sessions.create();
      log.info({ ip: request.ip }, 'review login');
      return reply.header('set-cookie', sessions.cookie(id)).redirect('/review', 303);
    });
    app.post('/review/logout', form, async (request, reply) => {
      if (sessions) {
        sessions.end(sessionFromCookie(request.headers.cookie));
        reply.header('set-cookie', sessions.cookie(''));
      }
      return reply.redirect(sessions ? LOGIN_PATH : '/review', 303);
    });
  };
}
