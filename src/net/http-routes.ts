// Request routing for http-server.ts (pure): a route is a method and a path pattern whose `:name`
// segments match any one segment; HEAD is served by the GET route (node sends HEAD answers without
// their body). No trailing-slash or case folding: a path matches exactly or not at all.

export interface Route<H> {
  method: string;
  /** e.g. `/v1/relays/:id` */
  path: string;
  handler: H;
}

export interface RouteMatch<H> {
  route: Route<H>;
  /** The `:name` segments' values, percent-decoded. */
  params: Record<string, string>;
}

/** The path percent-decoded, or null when its encoding is broken (`%E0%A4%A`, a lone `%`). */
export function decodePath(path: string): string | null {
  try {
    return decodeURIComponent(path);
  } catch {
    return null;
  }
}

/** The route for `method` and a raw (percent-encoded) `path`, or null. Call with a path decodePath accepts. */
export function matchRoute<H>(
  routes: readonly Route<H>[],
  method: string,
  path: string,
): RouteMatch<H> | null {
  const want = method === 'HEAD' ? 'GET' : method;
  const segments = path.split('/');
  for (const route of routes) {
    if (route.method !== want) continue;
    const pattern = route.path.split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      if (pattern[i].startsWith(':')) {
        const value = decodePath(segments[i]);
        if (value === null || value === '') ok = false;
        else params[pattern[i].slice(1)] = value;
      } else ok = decodePath(segments[i]) === pattern[i];
    }
    if (ok) return { route, params };
  }
  return null;
}
