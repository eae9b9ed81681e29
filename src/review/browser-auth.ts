// Browser login for the review page when the HTTP server requires a token (bound off loopback).
//
// The HttpServer's guard accepts `Authorization: Bearer <token>`, which a browser cannot send when
// it loads a page or an <img>. So the page has a login form: the token typed there is checked and
// exchanged for a random session id in an HttpOnly, SameSite=Strict cookie, which the review
// routes' own access rule (RouteAccess in src/http/server.ts) accepts. The token never reaches
// the browser's scripts.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'pw_review_session';
export const LOGIN_PATH = '/review/login';

export interface BrowserAuthOptions {
  token: string;
  sessionMs: number;
  now?: () => number;
}

export class BrowserSessions {
  private readonly sessions = new Map<string, number>();
  private readonly options: BrowserAuthOptions;

  constructor(options: BrowserAuthOptions) {
    this.options = options;
  }

  /** True when `candidate` is the token (constant time). */
  checkToken(candidate: string): boolean {
    const a = createHash('sha256').update(candidate).digest();
    const b = createHash('sha256').update(this.options.token).digest();
    return timingSafeEqual(a, b);
  }

  /** A new session id, valid for sessionMs. */
  create(): string {
    this.prune();
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, this.now() + this.options.sessionMs);
    return id;
  }

  valid(id: string | undefined): boolean {
    if (id === undefined) return false;
    const expires = this.sessions.get(id);
    if (expires === undefined) return false;
    if (expires <= this.now()) {
      this.sessions.delete(id);
      return false;
    }
    return true;
  }

  end(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(id);
  }

  /** `Set-Cookie` value for a session (empty id: clear the cookie). */
  cookie(id: string): string {
    const maxAge = id === '' ? 0 : Math.floor(this.options.sessionMs / 1000);
    return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`;
  }

  private prune(): void {
    const now = this.now();
    for (const [id, expires] of this.sessions) if (expires <= now) this.sessions.delete(id);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

export function sessionFromCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === SESSION_COOKIE) return rest.join('=');
  }
  return undefined;
}
