// Test plugin: each event kind tries one thing at the sandbox's edge from
// JavaScript and reports what happened, like the Rust `probe`.
import { HttpError, JunctionError, Request, connections, exportHandler, kv, sendAll } from 'junction-sdk';

function attempt(action) {
  try {
    return [true, String(action())];
  } catch (err) {
    return [false, String(err)];
  }
}

function escape() {
  // The engine has no files, sockets, environment or process: whatever of
  // them a script could reach is tried here.
  const [fileOk, file] = attempt(() => {
    if (typeof globalThis.require === 'function') return globalThis.require('fs').readFileSync('/etc/passwd');
    throw new Error('no require');
  });
  const [envOk, env] = attempt(() => {
    if (typeof globalThis.process === 'object') return Object.keys(globalThis.process.env).length;
    throw new Error('no process');
  });
  // JavaScript has no socket or name-lookup API; `fetch` is its way out,
  // tried by the `fetch` event (it stops the execution).
  return {
    file, file_ok: fileOk, dir_ok: false, env: envOk ? Number(env) : 0, args: 0,
    socket: 'no socket API', socket_ok: false, lookup_ok: false,
    globals: Object.getOwnPropertyNames(globalThis).sort(),
  };
}

function requestOf(spec) {
  const request = new Request(spec.method ?? 'GET', spec.url).query(spec.query ?? []);
  if (spec.connection) request.connection(spec.connection);
  for (const [name, value] of spec.headers ?? []) request.header(name, value);
  if (spec.body !== undefined && spec.body !== null) request.body(spec.body);
  if (spec.timeout_ms !== undefined && spec.timeout_ms !== null) request.timeout(spec.timeout_ms);
  return request;
}

function call(spec) {
  let response;
  try {
    response = requestOf(spec).send();
  } catch (err) {
    if (err instanceof HttpError) return { error: err.message, case: err.kind };
    throw err;
  }
  return answer(response);
}

function answer(response) {
  if (response instanceof HttpError) return { error: response.message, case: response.kind };
  // Printed, so a test can check what the plugin saw holds no credential.
  console.log(`got ${response.status} ${response.text()}`);
  return { status: response.status, body: response.text(), headers: response.headers };
}

export const handle = exportHandler((event) => {
  switch (event.kind) {
    case 'loop': {
      let counter = 0;
      for (;;) counter += 1;
    }
    case 'alloc': {
      const hoard = [];
      for (;;) hoard.push(new Uint8Array(1024 * 1024).fill(1));
    }
    case 'fetch': {
      // The component has no wasi:http import (the host refuses one): the
      // engine's fetch has nothing to send with.
      const pending = fetch(`http://${event.payload().addr}/escape`);
      return { fetch: Object.prototype.toString.call(pending) };
    }
    case 'escape':
      return escape();
    case 'call':
      return call(event.payload());
    case 'calls':
      return event.payload().map(call);
    case 'batches':
      return event.payload().map((batch) => sendAll(batch.map(requestOf)).map(answer));
    case 'connections':
      return {
        all: connections.all().map((c) => ({
          link_name: c.linkName, service: c.service, auth_type: c.authType,
          base_url: c.baseUrl, metadata: c.metadata, scopes: c.scopes,
          connected: c.status === 'connected',
        })),
        not_granted_hidden: connections.get('not_granted') === undefined,
      };
    case 'fail':
      throw new JunctionError('probe was asked to fail');
    case 'raise':
      throw new TypeError('missing');
    case 'kv': {
      const count = (kv.getJson('count') ?? 0) + 1;
      kv.setJson('count', count);
      let bigRefused = false;
      try {
        kv.set('big', new Uint8Array(2 * 1024 * 1024));
      } catch {
        bigRefused = true;
      }
      return { count, keys: kv.listKeys(''), big_refused: bigRefused };
    }
    default:
      throw new JunctionError(`probe does not know \`${event.kind}\``);
  }
});
