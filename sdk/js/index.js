// Junction plugins in JavaScript, over the `junction:plugin` WIT world
// (componentize-js). The same shape as the Rust and Python SDKs:
//
//   import { Request, exportHandler, log } from 'junction-sdk';
//   export const handle = exportHandler((event) => {
//     const campaign = Request.get(`/campaigns/${event.payload().campaign_id}`)
//       .connection('mailchimp').send().raiseForStatus().json();
//     log.info(`campaign ${campaign.id}`);
//     return { title: campaign.settings.title };
//   });
//
// Build with `junction build <dir>`; the manifest is `"junction"` in the
// project's package.json.

import { send as witSend, sendMany } from 'junction:plugin/http@0.1.1';
import * as witConnections from 'junction:plugin/connections@0.1.1';
import * as witKv from 'junction:plugin/kv@0.1.1';
import { log as witLog } from 'junction:plugin/log@0.1.1';

/** The event kind the host sends at upload to ask a tool for its input schema. */
export const TOOL_SCHEMA_KIND = 'junction.tool-schema';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A handler's error: its message ends up in the execution record. */
export class JunctionError extends Error {
  constructor(message) {
    super(message);
    this.name = 'JunctionError';
  }
}

/** Why `invoke-url` could not give a response; `kind` is the WIT case. */
export class HttpError extends JunctionError {
  constructor(kind, message, response) {
    super(message);
    this.name = 'HttpError';
    this.kind = kind;
    this.response = response;
  }

  /** The status of a `raiseForStatus()` failure. */
  get status() {
    return this.response ? this.response.status : undefined;
  }
}

/** The host refused a kv write. */
export class KvError extends JunctionError {
  constructor(message) {
    super(message);
    this.name = 'KvError';
  }
}

/** The event's payload is not what the handler expected. */
export class PayloadError extends JunctionError {
  constructor(message) {
    super(message);
    this.name = 'PayloadError';
  }
}

const HTTP_MESSAGES = {
  'unknown-connection': (v) => `invoke-url: unknown connection: ${v}`,
  'connection-unavailable': (v) => `invoke-url: connection unavailable: ${v}`,
  forbidden: (v) => `invoke-url: forbidden: ${v}`,
  'invalid-request': (v) => `invoke-url: invalid request: ${v}`,
  timeout: () => 'invoke-url: the request timed out',
  'too-large': () => 'invoke-url: the response body is too large',
  'limit-exceeded': (v) => `invoke-url: limit exceeded: ${v}`,
  transport: (v) => `invoke-url: transport error: ${v}`,
};

function httpErrorFromWit(thrown) {
  // componentize-js throws an import's `err` as an Error whose `payload` is
  // the WIT value: here the `http.error` variant, `{tag, val}`.
  return httpErrorFromVariant(thrown && thrown.payload, thrown);
}

function httpErrorFromVariant(variant, shown) {
  if (variant && typeof variant.tag === 'string' && HTTP_MESSAGES[variant.tag]) {
    return new HttpError(variant.tag, HTTP_MESSAGES[variant.tag](variant.val));
  }
  return new HttpError('unknown', `invoke-url: ${shown}`);
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * The host's header block (`name: value` lines, each ending in a newline)
 * as `[name, value]` pairs: a name never holds `:`, and one space follows it.
 */
function headerPairs(block) {
  const pairs = [];
  for (const line of block.split('\n')) {
    if (line === '') {
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1);
    pairs.push([name, value.startsWith(' ') ? value.slice(1) : value]);
  }
  return pairs;
}

/** The answer to a request: status, headers (names in lower case), body. */
export class Response {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }

  /** Whether the status is 2xx. */
  get isSuccess() {
    return this.status >= 200 && this.status < 300;
  }

  /** The first header called `name` (any case). */
  header(name) {
    const wanted = name.toLowerCase();
    const found = this.headers.find(([key]) => key === wanted);
    return found ? found[1] : undefined;
  }

  /** The body as UTF-8 text. */
  text() {
    return decoder.decode(this.body);
  }

  /** The body parsed as JSON; an `HttpError` of kind `decode` when it is not. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (err) {
      throw new HttpError('decode', `the HTTP ${this.status} response is not the JSON expected: ${err.message}`);
    }
  }

  /** This response when it is 2xx or 3xx; an `HttpError` of kind `status` otherwise. */
  raiseForStatus() {
    if (this.status >= 400) {
      throw new HttpError('status', `HTTP ${this.status}: ${this.text().slice(0, 500)}`, this);
    }
    return this;
  }
}

/** One outbound request, built step by step and sent with `send()`. */
export class Request {
  constructor(method, url) {
    const upper = String(method).toUpperCase();
    if (!METHODS.includes(upper)) {
      throw new HttpError('invalid-request', `invoke-url: invalid request: unknown HTTP method \`${method}\``);
    }
    this.method = upper;
    this.url = url;
    this.queryPairs = [];
    this.headers = [];
    this.bodyBytes = undefined;
    this.connectionName = undefined;
    this.timeoutMs = undefined;
  }

  static get(url) { return new Request('GET', url); }
  static head(url) { return new Request('HEAD', url); }
  static post(url) { return new Request('POST', url); }
  static put(url) { return new Request('PUT', url); }
  static patch(url) { return new Request('PATCH', url); }
  static delete(url) { return new Request('DELETE', url); }

  /** Sends the request with the credentials of connection `linkName`. */
  connection(linkName) {
    this.connectionName = linkName;
    return this;
  }

  /** Appends query parameters, in order: an object or `[name, value]` pairs. */
  query(pairs) {
    const entries = Array.isArray(pairs) ? pairs : Object.entries(pairs);
    for (const [name, value] of entries) {
      this.queryPairs.push([String(name), String(value)]);
    }
    return this;
  }

  /** Adds a header (with a connection, credential headers are refused). */
  header(name, value) {
    this.headers.push([String(name), String(value)]);
    return this;
  }

  /** Sets the raw body: a string or a Uint8Array. */
  body(body) {
    this.bodyBytes = typeof body === 'string' ? encoder.encode(body) : body;
    return this;
  }

  /** Sets a JSON body and `content-type: application/json`. */
  json(value) {
    this.bodyBytes = encoder.encode(JSON.stringify(value));
    if (!this.headers.some(([name]) => name.toLowerCase() === 'content-type')) {
      this.headers.push(['content-type', 'application/json']);
    }
    return this;
  }

  /** Time limit for this call in milliseconds. */
  timeout(ms) {
    if (!(ms >= 0)) {
      throw new HttpError('invalid-request', 'invoke-url: invalid request: a timeout cannot be negative');
    }
    this.timeoutMs = Math.min(Math.floor(ms), 2 ** 32 - 1);
    return this;
  }

  /** Performs the request through the host and waits for the whole response. */
  send() {
    let answer;
    try {
      answer = witSend(this.toWit());
    } catch (thrown) {
      throw httpErrorFromWit(thrown);
    }
    return new Response(answer.status, headerPairs(answer.headers), answer.body);
  }

  /** The request as the WIT `http.request` record. */
  toWit() {
    return {
      method: this.method.toLowerCase(),
      url: this.url,
      query: this.queryPairs,
      headers: this.headers,
      body: this.bodyBytes,
      connection: this.connectionName,
      timeoutMs: this.timeoutMs,
    };
  }
}

/**
 * Sends several requests at once and waits for all of them, like
 * `Promise.allSettled`: the answers come in the order of the requests, each
 * a `Response` or the `HttpError` its `send()` would have thrown. The host
 * keeps at most the plugin's in-flight limit (`limits.http-concurrency`, 6
 * by default) in flight; each request counts against `limits.http-calls`.
 */
export function sendAll(requests) {
  const batch = Array.from(requests, (request) => request.toWit());
  if (batch.length === 0) {
    return [];
  }
  return sendMany(batch).map((answer) =>
    answer.tag === 'ok'
      ? new Response(answer.val.status, headerPairs(answer.val.headers), answer.val.body)
      : httpErrorFromVariant(answer.val, answer.tag),
  );
}

function logAt(level) {
  return (message) => witLog(level, String(message));
}

/** Lines for the execution's log. */
export const log = {
  log: (level, message) => witLog(level, String(message)),
  trace: logAt('trace'),
  debug: logAt('debug'),
  info: logAt('info'),
  warn: logAt('warn'),
  error: logAt('error'),
};

/** The plugin's private, durable key-value store. */
export const kv = {
  /** The value under `key` (a Uint8Array), or undefined. */
  get: (key) => witKv.get(key),
  /** Stores a string or Uint8Array; a `KvError` when the host refuses it. */
  set(key, value) {
    const bytes = typeof value === 'string' ? encoder.encode(value) : value;
    try {
      witKv.set(key, bytes);
    } catch (thrown) {
      throw new KvError(`kv set \`${key}\`: ${thrown && thrown.payload !== undefined ? thrown.payload : thrown}`);
    }
  },
  /** Removes `key`; removing a missing key is not an error. */
  delete: (key) => witKv.delete(key),
  /** The keys that start with `prefix`, in order. */
  listKeys: (prefix = '') => witKv.listKeys(prefix),
  /** The JSON value under `key`, or undefined. */
  getJson(key) {
    const raw = witKv.get(key);
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(decoder.decode(raw));
    } catch (err) {
      throw new KvError(`kv \`${key}\` does not hold JSON: ${err.message}`);
    }
  },
  /** Stores `value` as JSON under `key`. */
  setJson(key, value) {
    kv.set(key, JSON.stringify(value));
  },
};

function connectionFromWit(c) {
  return {
    linkName: c.linkName,
    service: c.service,
    authType: c.authType,
    status: c.status,
    scopes: c.scopes,
    baseUrl: c.baseUrl,
    metadata: Object.fromEntries(c.metadata),
  };
}

/** What a plugin may know about its connections. Never a secret. */
export const connections = {
  /** The connection granted under `linkName`, or undefined. */
  get(linkName) {
    const found = witConnections.get(linkName);
    return found === undefined ? undefined : connectionFromWit(found);
  },
  /** Every connection granted to this plugin. */
  all: () => witConnections.all().map(connectionFromWit),
};

/**
 * Waits `ms` milliseconds. componentize-js offers no blocking sleep to a
 * synchronous export, so this spins on the clock until the deadline the
 * host enforces anyway; keep waits short.
 */
export function sleep(ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

/** The event that made the host run the plugin. */
export class Event {
  constructor(wit) {
    this.id = wit.id;
    this.kind = wit.kind;
    this.payloadJson = wit.payload;
    this.occurredAtMs = Number(wit.occurredAtMs);
  }

  /** The payload parsed as JSON; a `PayloadError` when it is not JSON. */
  payload() {
    try {
      return JSON.parse(this.payloadJson);
    } catch (err) {
      throw new PayloadError(`the event's payload is not JSON: ${err.message}`);
    }
  }
}

function describe(err) {
  if (err instanceof JunctionError) return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * The plugin's entry point: `export const handle = exportHandler(fn)`.
 * `fn` takes an `Event` and returns anything JSON.stringify accepts; a
 * throw fails the execution with its message. An MCP tool may pass the
 * JSON Schema of its arguments as `toolInputSchema`.
 */
export function exportHandler(handler, { toolInputSchema } = {}) {
  return (witEvent) => {
    if (witEvent.kind === TOOL_SCHEMA_KIND && toolInputSchema !== undefined) {
      return JSON.stringify(toolInputSchema);
    }
    let output;
    try {
      output = handler(new Event(witEvent));
    } catch (err) {
      // The world's `err` is a string: componentize-js turns a thrown string into it.
      throw describe(err);
    }
    const text = JSON.stringify(output === undefined ? null : output);
    if (text === undefined) {
      throw "the handler's result cannot be serialised as JSON";
    }
    return text;
  };
}
