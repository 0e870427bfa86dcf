// What `gatehouse audit init` reads an API from: a list of operations, each with the
// fields its request sends and its replies carry. Two sources fill it: an OpenAPI document
// (schemas: names, types, enums, consts) and a browser recording in HAR format (examples:
// the values really sent and received). The drafter only ever looks at this shape.
import { parse as parseYaml } from 'yaml';

export interface Field {
  /** Dotted path; array items appear as `list.0.field`. */
  name: string;
  type?: string | undefined;
  /** Known values: an enum or const (OpenAPI), or the value seen (HAR). */
  values?: unknown[] | undefined;
}

export interface Reply {
  status: number;
  fields: Field[];
  /** The reply set a cookie (HAR only). */
  setsCookie?: boolean;
}

export interface ApiOperation {
  method: string;
  /** With `{param}` templates for path parameters (HAR: id-like segments). */
  path: string;
  encoding: 'json' | 'form';
  body: Field[];
  required: string[];
  replies: Reply[];
  /** true: needs a session or token; false: open; undefined: not known. */
  secured: boolean | undefined;
  /** Gatehouse's `x-gatehouse-requires`, when the document has it. */
  requires?: { session?: string; fresh?: unknown; scope?: string } | undefined;
  /** Scopes of an API-token scheme that may call it. */
  tokenScopes: string[];
  /** Lower-case path, summary, operation id, tags: for matching words. */
  text: string;
}

export interface ApiDescription {
  title: string;
  operations: ApiOperation[];
  /** Session transport the description declares (a cookie security scheme, or bearer). */
  cookieSession: boolean | undefined;
  /** Every scope an API token may hold. */
  scopes: string[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---- OpenAPI ----

export function fromOpenApi(text: string): ApiDescription {
  const doc = parseYaml(text) as unknown;
  if (!isObject(doc) || (typeof doc.openapi !== 'string' && typeof doc.swagger !== 'string') || !isObject(doc.paths)) {
    throw new Error('not an OpenAPI document (no "openapi" version or no "paths")');
  }
  const resolve = (v: unknown, depth = 0): unknown => {
    if (!isObject(v) || typeof v.$ref !== 'string' || depth > 10) return v;
    const target = v.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((node, key) => (isObject(node) ? node[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
    return resolve(target, depth + 1);
  };
  const components = isObject(doc.components) ? doc.components : {};
  const schemes = isObject(components.securitySchemes) ? components.securitySchemes : {};
  const tokenSchemes = new Set<string>();
  const scopes: string[] = [];
  let cookieSession: boolean | undefined;
  for (const [name, raw] of Object.entries(schemes)) {
    const s = resolve(raw);
    if (!isObject(s)) continue;
    if (s.type === 'apiKey' && s.in === 'cookie') cookieSession = true;
    if (s.type === 'http' && s.scheme === 'bearer') cookieSession ??= false;
    if (s.type === 'oauth2' && isObject(s.flows)) {
      tokenSchemes.add(name);
      for (const flow of Object.values(s.flows)) if (isObject(flow) && isObject(flow.scopes)) scopes.push(...Object.keys(flow.scopes));
    }
  }
  const operations: ApiOperation[] = [];
  for (const [path, rawItem] of Object.entries(doc.paths)) {
    const item = resolve(rawItem);
    if (!isObject(item)) continue;
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = resolve(item[method]);
      if (!isObject(op)) continue;
      const content = isObject(resolve(op.requestBody)) ? (resolve(op.requestBody) as Json).content : undefined;
      let encoding: 'json' | 'form' = 'json';
      let bodySchema: unknown;
      if (isObject(content)) {
        const jsonType = Object.keys(content).find((t) => t.includes('json'));
        const formType = Object.keys(content).find((t) => t.includes('x-www-form-urlencoded'));
        const chosen = jsonType ?? formType;
        if (chosen === formType && chosen) encoding = 'form';
        if (chosen && isObject(content[chosen])) bodySchema = (content[chosen] as Json).schema;
      }
      const replies: Reply[] = [];
      for (const [status, rawReply] of Object.entries(isObject(op.responses) ? op.responses : {})) {
        if (!/^\d{3}$/.test(status)) continue;
        const reply = resolve(rawReply);
        const replyContent = isObject(reply) && isObject(reply.content) ? reply.content : {};
        const json = Object.entries(replyContent).find(([t]) => t.includes('json'))?.[1];
        replies.push({ status: Number(status), fields: isObject(json) ? schemaFields(json.schema, resolve) : [] });
      }
      const security = Array.isArray(op.security) ? op.security : Array.isArray(doc.security) ? doc.security : undefined;
      const secured =
        security === undefined ? undefined : security.length > 0 && !security.some((s) => isObject(s) && !Object.keys(s).length);
      const tokenScopes = (security ?? []).flatMap((s) =>
        isObject(s) ? Object.entries(s).flatMap(([k, v]) => (tokenSchemes.has(k) && Array.isArray(v) ? (v as string[]) : [])) : [],
      );
      const requires = isObject(op['x-gatehouse-requires']) ? (op['x-gatehouse-requires'] as ApiOperation['requires']) : undefined;
      operations.push({
        method: method.toUpperCase(),
        path,
        encoding,
        body: schemaFields(bodySchema, resolve),
        required: requiredOf(bodySchema, resolve),
        replies,
        secured: requires?.session ? requires.session !== 'none' : secured,
        requires,
        tokenScopes,
        text: [path, op.summary, op.description, op.operationId, ...(Array.isArray(op.tags) ? op.tags : [])]
          .filter((x) => typeof x === 'string')
          .join(' ')
          .toLowerCase(),
      });
    }
  }
  const info = isObject(doc.info) ? doc.info : {};
  return { title: typeof info.title === 'string' ? info.title : 'API', operations, cookieSession, scopes };
}

function requiredOf(schema: unknown, resolve: (v: unknown) => unknown): string[] {
  const s = resolve(schema);
  if (!isObject(s)) return [];
  const own = Array.isArray(s.required) ? (s.required as string[]) : [];
  const branches = [...(Array.isArray(s.allOf) ? s.allOf : [])];
  return [...own, ...branches.flatMap((b) => requiredOf(b, resolve))];
}

/** Every field of a schema, dotted, with type and known values; unions contribute all branches. */
function schemaFields(schema: unknown, resolve: (v: unknown) => unknown, prefix = '', depth = 0): Field[] {
  const s = resolve(schema);
  if (!isObject(s) || depth > 5) return [];
  const out: Field[] = [];
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    if (Array.isArray(s[key])) for (const branch of s[key]) out.push(...schemaFields(branch, resolve, prefix, depth + 1));
  }
  if (isObject(s.properties)) {
    for (const [name, raw] of Object.entries(s.properties)) {
      const p = resolve(raw);
      const path = prefix ? `${prefix}.${name}` : name;
      const values = isObject(p) ? (p.const !== undefined ? [p.const] : Array.isArray(p.enum) ? p.enum : undefined) : undefined;
      const anyValues = isObject(p) && !values ? unionValues(p, resolve) : undefined;
      out.push({ name: path, type: isObject(p) && typeof p.type === 'string' ? p.type : undefined, values: values ?? anyValues });
      if (isObject(p) && p.type === 'array') out.push(...schemaFields(p.items, resolve, `${path}.0`, depth + 1));
      else out.push(...schemaFields(p, resolve, path, depth + 1));
    }
  }
  return out;
}

function unionValues(p: Json, resolve: (v: unknown) => unknown): unknown[] | undefined {
  const branches = [...(Array.isArray(p.anyOf) ? p.anyOf : []), ...(Array.isArray(p.oneOf) ? p.oneOf : [])].map((b) => resolve(b));
  const values = branches.flatMap((b) => (isObject(b) ? (b.const !== undefined ? [b.const] : Array.isArray(b.enum) ? b.enum : []) : []));
  return values.length ? values : undefined;
}

// ---- HAR ----

interface HarHeader {
  name: string;
  value: string;
}

/** A path segment that is an id, not a name: digits, hex, uuids, long random tokens. */
const ID_SEGMENT = /^(?:\d+|[0-9a-f]{8,}|[0-9a-f-]{36}|[A-Za-z0-9_-]{20,})$/i;

export function fromHar(text: string, origin?: string): ApiDescription {
  const har = JSON.parse(text) as { log?: { entries?: unknown[]; pages?: unknown[] } };
  const entries = har.log?.entries;
  if (!Array.isArray(entries)) throw new Error('not a HAR file (no log.entries)');
  const byKey = new Map<string, ApiOperation>();
  let cookieSession: boolean | undefined;
  for (const raw of entries) {
    if (!isObject(raw) || !isObject(raw.request) || !isObject(raw.response)) continue;
    const req = raw.request as {
      method: string;
      url: string;
      headers?: HarHeader[];
      postData?: { mimeType?: string; text?: string; params?: HarHeader[] };
    };
    const res = raw.response as { status: number; headers?: HarHeader[]; content?: { mimeType?: string; text?: string } };
    const url = new URL(req.url);
    if (origin && url.origin !== new URL(origin).origin) continue;
    if (/\.(js|css|png|svg|ico|woff2?|map)$/.test(url.pathname)) continue;
    const params: string[] = [];
    const path = url.pathname
      .split('/')
      .map((seg) => {
        if (!ID_SEGMENT.test(seg) || /^[a-z-]+$/.test(seg)) return seg;
        const name = params.length ? `id${params.length + 1}` : 'id';
        params.push(name);
        return `{${name}}`;
      })
      .join('/');
    const reqHeaders = new Map((req.headers ?? []).map((h) => [h.name.toLowerCase(), h.value]));
    const resHeaders = (res.headers ?? []).map((h) => [h.name.toLowerCase(), h.value] as const);
    const setsCookie = resHeaders.some(([n]) => n === 'set-cookie');
    const form = (req.postData?.mimeType ?? '').includes('x-www-form-urlencoded');
    let body: Field[] = [];
    if (req.postData) {
      if (form) {
        const pairs = req.postData.params?.length
          ? req.postData.params.map((p) => [p.name, p.value] as const)
          : [...new URLSearchParams(req.postData.text ?? '')];
        body = pairs.map(([name, value]) => ({ name, type: 'string', values: [value] }));
      } else body = exampleFields(safeJson(req.postData.text));
    }
    const reply: Reply = { status: res.status, fields: exampleFields(safeJson(res.content?.text)), setsCookie };
    const key = `${req.method} ${path}`;
    const secured = reqHeaders.has('authorization') || reqHeaders.has('cookie') ? true : undefined;
    if (reqHeaders.has('authorization')) cookieSession ??= false;
    if (setsCookie && reqHeaders.has('cookie')) cookieSession = true;
    const existing = byKey.get(key);
    if (existing) {
      existing.replies.push(reply);
      for (const f of body) if (!existing.body.some((b) => b.name === f.name)) existing.body.push(f);
      if (secured) existing.secured = true;
      continue;
    }
    byKey.set(key, {
      method: req.method.toUpperCase(),
      path,
      encoding: form ? 'form' : 'json',
      body,
      required: body.map((f) => f.name),
      replies: [reply],
      secured,
      tokenScopes: [],
      text: path.toLowerCase(),
    });
  }
  const host = (() => {
    const first = entries.find((e) => isObject(e) && isObject(e.request)) as { request: { url: string } } | undefined;
    return first ? new URL(first.request.url).host : 'recorded app';
  })();
  return { title: host, operations: [...byKey.values()], cookieSession, scopes: [] };
}

function safeJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Fields of an example JSON value, each with the value seen. */
function exampleFields(value: unknown, prefix = '', depth = 0): Field[] {
  if (depth > 5) return [];
  if (Array.isArray(value)) return value.length ? exampleFields(value[0], `${prefix}.0`, depth + 1) : [];
  if (!isObject(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const name = prefix ? `${prefix}.${k}` : k;
    const type = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
    const own: Field = { name, type, values: isObject(v) || Array.isArray(v) ? undefined : [v] };
    return [own, ...exampleFields(v, name, depth + 1)];
  });
}
