// Same-origin rules of the HTTP server. Any web page open on the ship's machine can make its
// browser send requests to 127.0.0.1: form posts and `no-cors` fetches go out without asking the
// server first (they only cannot read the answer), and a page whose own DNS name is re-pointed at
// 127.0.0.1 ("DNS rebinding") can even read answers, because the browser then takes the server for
// that page's own site. Two rules close both:
//
// - every request must name, in its Host header, a host this server answers to (a rebound page's
//   requests carry the page's own name);
// - a request that changes something must be JSON (`Content-Type: application/json`, which a
//   browser never sends across sites without the server's consent, and this server gives none),
//   and when it says where it comes from (Origin, else Referer) that must be one of those hosts.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** Methods that only read; every other method is taken to change something. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

interface HostEntry {
  /** Lower-cased name or address; IPv6 in brackets. */
  name: string;
  /** The port it must come with; undefined: any port (or none). */
  port: number | undefined;
}

/**
 * `name[:port]` as in a Host header or a URL's host, lower-cased (IPv6 in brackets). Undefined for
 * anything else (spaces, user info, paths, a port out of range).
 */
export function splitHostPort(value: string): HostEntry | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(value.trim().toLowerCase());
  if (m === null) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && port > 65535) return undefined;
  return { name: m[1]!, port };
}

/** An address or name as it appears in a Host header: IPv6 in brackets, lower case. */
function hostName(host: string): string {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return isIP(h) === 6 ? `[${h}]` : h;
}

/**
 * Parses `http.allowedHosts`: names or addresses separated by commas or spaces, each optionally
 * with `:port` (without: any port, as behind a proxy). Returns the entries and, for each bad one,
 * a sentence saying why.
 */
export function parseAllowedHosts(text: string): { hosts: string[]; errors: string[] } {
  const hosts: string[] = [];
  const errors: string[] = [];
  for (const raw of text.split(/[\s,]+/).filter(Boolean)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
      errors.push(`"${raw}" is a URL; give only the name or address (and :port if it must match)`);
      continue;
    }
    const entry = isIP(raw) === 6 ? `[${raw}]` : raw;
    if (splitHostPort(entry) === undefined) {
      errors.push(`"${raw}" is not a host name or address (letters, digits, ".", "-", "_"; IPv6 in [brackets]), optionally with :port`);
      continue;
    }
    hosts.push(entry.toLowerCase());
  }
  return { hosts, errors };
}

/** The names a server answers to. */
export class HostAllowList {
  private readonly entries: HostEntry[];

  private constructor(entries: HostEntry[]) {
    this.entries = entries;
  }

  /**
   * For a server bound to `boundHost:port`: 127.0.0.1, localhost, [::1] and the bound host, each
   * with that port (bound to all interfaces, 0.0.0.0 or ::, this machine's own addresses too), plus
   * `extra` (parsed by parseAllowedHosts).
   */
  static forServer(boundHost: string, port: number, extra: readonly string[]): HostAllowList {
    const names = new Set(['127.0.0.1', 'localhost', '[::1]', hostName(boundHost)]);
    if (boundHost === '0.0.0.0' || boundHost === '::' || boundHost === '[::]') {
      for (const list of Object.values(networkInterfaces())) {
        for (const a of list ?? []) {
          if (a.family === 'IPv4') names.add(a.address);
          else if (a.scopeid === undefined || a.scopeid === 0) names.add(`[${a.address.toLowerCase()}]`);
        }
      }
    }
    const entries: HostEntry[] = [...names].map((name) => ({ name, port }));
    for (const e of extra) {
      const entry = splitHostPort(e);
      if (entry !== undefined) entries.push(entry);
    }
    return new HostAllowList(entries);
  }

  /** A Host header (a missing port is 80, the browser's default). */
  allowsHost(header: string | undefined): boolean {
    if (header === undefined) return false;
    const h = splitHostPort(header);
    return h !== undefined && this.allows(h.name, h.port ?? 80);
  }

  /** An Origin or Referer header: an http(s) URL on one of the hosts ("null" and others: false). */
  allowsUrl(value: string): boolean {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return false;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    return this.allows(url.hostname.toLowerCase(), port);
  }

  private allows(name: string, port: number): boolean {
    return this.entries.some((e) => e.name === name && (e.port === undefined || e.port === port));
  }
}

/** Why a request that changes something is refused, or undefined when it may go on. */
export interface CrossSiteRefusal {
  code: 'PW_E_HTTP_ORIGIN' | 'PW_E_HTTP_CONTENT_TYPE';
  status: 403 | 415;
  detail: string;
  /** The header value that was refused (logged under its own key). */
  value: string | undefined;
}

/**
 * The rule for methods other than GET, HEAD and OPTIONS: JSON only (or a plain HTML form where
 * `formAllowed`, for the review login and logout forms), and an Origin, else a Referer, when sent,
 * naming one of `hosts`. Scripts that send neither header (curl, Python) are not browsers and
 * cannot be made to act for another site.
 */
export function crossSiteRefusal(
  headers: { origin?: string | undefined; referer?: string | undefined; 'content-type'?: string | undefined },
  hosts: HostAllowList,
  formAllowed: boolean,
): CrossSiteRefusal | undefined {
  const from = headers.origin ?? headers.referer;
  if (from !== undefined && !hosts.allowsUrl(from)) {
    const which = headers.origin !== undefined ? 'Origin' : 'Referer';
    return { code: 'PW_E_HTTP_ORIGIN', status: 403, detail: `The request came from ${which} "${from.slice(0, 200)}", which is not this server.`, value: from };
  }
  const type = (headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'application/json') return undefined;
  if (formAllowed && type === 'application/x-www-form-urlencoded') return undefined;
  const sent = type === '' ? 'no Content-Type' : `Content-Type "${type.slice(0, 100)}"`;
  return { code: 'PW_E_HTTP_CONTENT_TYPE', status: 415, detail: `The request was sent with ${sent}; this route takes application/json${formAllowed ? ' or a form from this server\'s own page' : ''}.`, value: headers['content-type'] };
}
