// The MailChimp Marketing API v3 through the `mailchimp` connection, and
// its error conventions (`application/problem+json`, 429 with `Retry-After`).
import { HttpError, JunctionError, Request, log, sendAll, sleep } from 'junction-sdk';
import { md5Hex } from './md5.js';

export const CONNECTION = 'mailchimp';
// Attempts for one request when MailChimp answers 429.
const MAX_ATTEMPTS = 4;
// The longest `Retry-After` honoured, in seconds; longer waits fail the run.
const MAX_RETRY_AFTER = 10;

/** MD5 of the lower-cased email address. */
export function subscriberHash(email) {
  return md5Hex(email.trim().toLowerCase());
}

function problemError(request, response) {
  const what = `MailChimp ${request.method} ${request.url}`;
  let problem;
  try {
    problem = response.json();
  } catch {
    problem = undefined;
  }
  if (problem && typeof problem === 'object' && problem.title) {
    const status = problem.status || response.status;
    return new JunctionError(`${what} failed with ${status}: ${problem.title}: ${problem.detail ?? ''}`);
  }
  return new JunctionError(`${what} failed with HTTP ${response.status}: ${response.text()}`);
}

/** Sends `request`, waiting and retrying on 429 as `Retry-After` says. */
export function send(request) {
  return settle(request.connection(CONNECTION), undefined);
}

// `request`'s final response: `first` (when it was already sent, as part of
// a batch) or its own send, then waits and retries on 429 as `Retry-After`
// says.
function settle(request, first) {
  for (let attempt = 1; ; attempt++) {
    const response = first ?? request.send();
    first = undefined;
    if (response.status === 429 && attempt < MAX_ATTEMPTS) {
      const header = Number.parseInt((response.header('retry-after') ?? '').trim(), 10);
      const wait = Number.isFinite(header) ? header : attempt;
      if (wait > MAX_RETRY_AFTER) {
        throw new JunctionError(
          `MailChimp asked to wait ${wait} s before retrying ${request.url}, longer than this run waits`,
        );
      }
      log.warn(`MailChimp rate limit on ${request.url} (attempt ${attempt}); retrying in ${wait} s`);
      sleep(wait * 1000);
      continue;
    }
    if (response.isSuccess) {
      return response;
    }
    throw problemError(request, response);
  }
}

function parse(path, response) {
  try {
    return response.json();
  } catch (err) {
    throw new JunctionError(`MailChimp GET ${path}: unexpected response: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** GET a JSON document. */
export function get(path, query = []) {
  return parse(path, send(Request.get(path).query(query)));
}

/**
 * GETs `path` once per query, all at once (the host keeps up to the plugin's
 * in-flight limit in flight), the documents in the order of the queries; one
 * answered 429 is retried on its own.
 */
export function getEach(path, queries) {
  const requests = queries.map((query) => Request.get(path).query(query).connection(CONNECTION));
  return sendAll(requests).map((answer, i) => {
    if (answer instanceof HttpError) throw answer;
    return parse(path, settle(requests[i], answer));
  });
}
