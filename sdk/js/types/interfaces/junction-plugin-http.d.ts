declare module 'junction:plugin/http@0.1.1' {
  /**
   * Performs one request and waits for the whole response.
   */
  export function invokeUrl(request: Request): Response;
  /**
   * Performs several requests at once and waits for all of them; the
   * answers come in the order of the requests. The host keeps at most the
   * execution's in-flight limit (`limits.http-concurrency`) in flight and
   * starts the next request as one finishes. Each request counts against
   * the call budget (`limits.http-calls`) like one `invoke-url`; those past
   * it are answered `limit-exceeded`. A list longer than the whole budget
   * ends the execution.
   */
  export function invokeMany(requests: Array<Request>): Array<Result<Response, Error>>;
  /**
   * Performs one request and waits for the whole response, answered as a
   * `reply` (since 0.1.1). The same call as `invoke-url`, which stays for
   * plugins built against 0.1.0.
   */
  export function send(request: Request): Reply;
  /**
   * Performs several requests at once, as `invoke-many` does, answered
   * as `reply`s (since 0.1.1).
   */
  export function sendMany(requests: Array<Request>): Array<Result<Reply, Error>>;
  /**
   * The HTTP method of a request.
   * # Variants
   * 
   * ## `"get"`
   * 
   * ## `"head"`
   * 
   * ## `"post"`
   * 
   * ## `"put"`
   * 
   * ## `"patch"`
   * 
   * ## `"delete"`
   */
  export type Method = 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete';
  /**
   * One outbound request.
   */
  export interface Request {
    /**
     * The method to use.
     */
    method: Method,
    /**
     * An absolute `https://` or `http://` URL, or (with a connection) a path
     * such as `/lists/abc/members`, resolved against the connection's API
     * base URL.
     */
    url: string,
    /**
     * Query parameters appended to the URL, in order ("parameters").
     */
    query: Array<[string, string]>,
    /**
     * Request headers. With a connection, `authorization`,
     * `proxy-authorization` and `cookie` are refused.
     */
    headers: Array<[string, string]>,
    /**
     * The request body, if any.
     */
    body?: Uint8Array,
    /**
     * Link name of the connection whose credentials the host attaches.
     */
    connection?: string,
    /**
     * Time limit for this call in milliseconds; the host never waits longer
     * than the execution's remaining time.
     */
    timeoutMs?: number,
  }
  /**
   * The answer to a request. Any status, 2xx or not, is a response.
   */
  export interface Response {
    /**
     * The HTTP status code.
     */
    status: number,
    /**
     * Response headers, names in lower case.
     */
    headers: Array<[string, string]>,
    /**
     * The whole response body.
     */
    body: Uint8Array,
  }
  /**
   * The answer to a request with its headers in one block of text, which
   * the host hands over in one copy where a list costs two per header.
   * Any status, 2xx or not, is a reply.
   */
  export interface Reply {
    /**
     * The HTTP status code.
     */
    status: number,
    /**
     * Response headers as lines `name: value`, each ending in `\n`, in
     * the order received (a repeated name's lines together); names in lower
     * case. A name never holds `:` and no line holds another `\n`, so
     * splitting at the first `:` and dropping the one space after it gives
     * a header back.
     */
    headers: string,
    /**
     * The whole response body.
     */
    body: Uint8Array,
  }
  /**
   * Why a request could not be made. Each message says what to fix.
   */
  export type Error = ErrorUnknownConnection | ErrorConnectionUnavailable | ErrorForbidden | ErrorInvalidRequest | ErrorTimeout | ErrorTooLarge | ErrorLimitExceeded | ErrorTransport;
  /**
   * No connection has this link name, or it was not granted to this plugin.
   */
  export interface ErrorUnknownConnection {
    tag: 'unknown-connection',
    val: string,
  }
  /**
   * The connection exists but cannot be used now: not authorised, revoked,
   * or its token could not be refreshed.
   */
  export interface ErrorConnectionUnavailable {
    tag: 'connection-unavailable',
    val: string,
  }
  /**
   * The destination or a header is not allowed.
   */
  export interface ErrorForbidden {
    tag: 'forbidden',
    val: string,
  }
  /**
   * The request itself is malformed (bad URL, bad header, ...).
   */
  export interface ErrorInvalidRequest {
    tag: 'invalid-request',
    val: string,
  }
  /**
   * The call did not finish within its time limit.
   */
  export interface ErrorTimeout {
    tag: 'timeout',
  }
  /**
   * The response body is larger than the host accepts.
   */
  export interface ErrorTooLarge {
    tag: 'too-large',
  }
  /**
   * A per-execution budget (number of calls, concurrent calls) is used up.
   */
  export interface ErrorLimitExceeded {
    tag: 'limit-exceeded',
    val: string,
  }
  /**
   * The connection failed (refused, reset, TLS, DNS, ...).
   */
  export interface ErrorTransport {
    tag: 'transport',
    val: string,
  }
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
