// Type declarations of the Junction JavaScript SDK (index.js). The WIT
// interfaces underneath are declared in types/, generated from wit/ by
// `jco types` (npm run types).
/// <reference path="./types/plugin.d.ts" />

import type { Event as WitEvent } from 'junction:plugin/plugin@0.1.1';

/** The event kind the host sends at upload to ask a tool for its input schema. */
export const TOOL_SCHEMA_KIND: 'junction.tool-schema';

/** A handler's error: its message ends up in the execution record. */
export class JunctionError extends Error {
  constructor(message: string);
}

/** The WIT `http.error` cases, plus `status` (raiseForStatus) and `decode` (json). */
export type HttpErrorKind =
  | 'unknown-connection'
  | 'connection-unavailable'
  | 'forbidden'
  | 'invalid-request'
  | 'timeout'
  | 'too-large'
  | 'limit-exceeded'
  | 'transport'
  | 'status'
  | 'decode'
  | 'unknown';

/** Why `invoke-url` could not give a response; `kind` is the WIT case. */
export class HttpError extends JunctionError {
  constructor(kind: HttpErrorKind, message: string, response?: Response);
  readonly kind: HttpErrorKind;
  readonly response: Response | undefined;
  /** The status of a `raiseForStatus()` failure. */
  readonly status: number | undefined;
}

/** The host refused a kv write, or a kv value is not the JSON expected. */
export class KvError extends JunctionError {
  constructor(message: string);
}

/** The event's payload is not what the handler expected. */
export class PayloadError extends JunctionError {
  constructor(message: string);
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The answer to a request: status, headers (names in lower case), body. */
export class Response {
  constructor(status: number, headers: Array<[string, string]>, body: Uint8Array);
  readonly status: number;
  readonly headers: Array<[string, string]>;
  readonly body: Uint8Array;
  /** Whether the status is 2xx. */
  readonly isSuccess: boolean;
  /** The first header called `name` (any case). */
  header(name: string): string | undefined;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON; an `HttpError` of kind `decode` when it is not. */
  json<T = any>(): T;
  /** This response when it is 2xx or 3xx; an `HttpError` of kind `status` otherwise. */
  raiseForStatus(): this;
}

/** One outbound request, built step by step and sent with `send()`. */
export class Request {
  constructor(method: Method | Lowercase<Method>, url: string);
  static get(url: string): Request;
  static head(url: string): Request;
  static post(url: string): Request;
  static put(url: string): Request;
  static patch(url: string): Request;
  static delete(url: string): Request;
  /** Sends the request with the credentials of connection `linkName`. */
  connection(linkName: string): this;
  /** Appends query parameters, in order: an object or `[name, value]` pairs. */
  query(pairs: Record<string, string | number | boolean> | Array<[string, string | number | boolean]>): this;
  /** Adds a header (with a connection, credential headers are refused). */
  header(name: string, value: string): this;
  /** Sets the raw body. */
  body(body: string | Uint8Array): this;
  /** Sets a JSON body and `content-type: application/json`. */
  json(value: unknown): this;
  /** Time limit for this call in milliseconds. */
  timeout(ms: number): this;
  /** Performs the request through the host and waits for the whole response. */
  send(): Response;
}

/**
 * Sends several requests at once and waits for all of them: the answers come
 * in the order of the requests, each a `Response` or the `HttpError` its
 * `send()` would have thrown. The host keeps at most the plugin's in-flight
 * limit (`limits.http-concurrency`, 6 by default) in flight; each request
 * counts against `limits.http-calls`.
 */
export function sendAll(requests: Iterable<Request>): Array<Response | HttpError>;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Lines for the execution's log. */
export const log: {
  log(level: LogLevel, message: unknown): void;
  trace(message: unknown): void;
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};

/** The plugin's private, durable key-value store. */
export const kv: {
  /** The value under `key`, or undefined. */
  get(key: string): Uint8Array | undefined;
  /** Stores a string or bytes; a `KvError` when the host refuses it. */
  set(key: string, value: string | Uint8Array): void;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): void;
  /** The keys that start with `prefix`, in order. */
  listKeys(prefix?: string): string[];
  /** The JSON value under `key`, or undefined. */
  getJson<T = any>(key: string): T | undefined;
  /** Stores `value` as JSON under `key`. */
  setJson(key: string, value: unknown): void;
};

export type ConnectionStatus = 'connected' | 'disconnected' | 'needs-reauth' | 'error';

/** A connection as a plugin sees it: never a secret. */
export interface Connection {
  linkName: string;
  service: string;
  authType: string;
  status: ConnectionStatus;
  scopes: string[];
  baseUrl: string | undefined;
  /** Non-secret values captured at connect time (api_domain, dc, ...). */
  metadata: Record<string, string>;
}

/** What a plugin may know about its connections. */
export const connections: {
  /** The connection granted under `linkName`, or undefined. */
  get(linkName: string): Connection | undefined;
  /** Every connection granted to this plugin. */
  all(): Connection[];
};

/** Waits `ms` milliseconds (spinning on the clock; keep waits short). */
export function sleep(ms: number): void;

/** The event that made the host run the plugin. */
export class Event {
  constructor(wit: WitEvent);
  readonly id: string;
  readonly kind: string;
  /** The payload as the JSON text the host sent. */
  readonly payloadJson: string;
  readonly occurredAtMs: number;
  /** The payload parsed as JSON; a `PayloadError` when it is not JSON. */
  payload<T = any>(): T;
}

export interface ExportOptions {
  /** An MCP tool's input JSON Schema, answered to the host at upload. */
  toolInputSchema?: object;
}

/**
 * The plugin's entry point: `export const handle = exportHandler(fn)`.
 * `fn` returns anything `JSON.stringify` accepts; a throw fails the
 * execution with its message.
 */
export function exportHandler(
  handler: (event: Event) => unknown,
  options?: ExportOptions,
): (event: WitEvent) => string;
