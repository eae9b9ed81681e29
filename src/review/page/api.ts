// The review page's calls to the JSON API, and the errors it answers with.

/** An error the API answered with: its catalogue code, when it gave one. */
export class ApiError extends Error {
  code: string | undefined;

  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

// The server takes changes as JSON only (a type other sites cannot make a browser send), so
// every request but a GET is JSON, `{}` when there is nothing to say.
export async function api<T>(method: string, url: string, body?: object): Promise<T> {
  const reads = method === 'GET' || method === 'HEAD';
  const res = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: reads ? {} : { 'content-type': 'application/json' },
    body: reads ? undefined : JSON.stringify(body ?? {}),
  });
  if (res.status === 401) {
    window.location.href = '/review/login';
    throw new Error('login needed');
  }
  const data = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
  if (!res.ok) {
    throw new ApiError(data.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${res.status}`, data.error ? data.error.code : undefined);
  }
  return data as T;
}

export const messageOf = (err: unknown): string => (err as Error).message;
