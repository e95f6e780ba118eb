declare module 'junction:plugin/connections@0.1.1' {
  /**
   * Looks up a connection granted to this plugin by link name.
   */
  export function get(linkName: string): Connection | undefined;
  /**
   * Every connection granted to this plugin.
   */
  export function all(): Array<Connection>;
  /**
   * Whether a connection can be used.
   * # Variants
   * 
   * ## `"connected"`
   * 
   * ## `"disconnected"`
   * 
   * ## `"needs-reauth"`
   * 
   * ## `"error"`
   */
  export type Status = 'connected' | 'disconnected' | 'needs-reauth' | 'error';
  /**
   * A connection as a plugin sees it.
   */
  export interface Connection {
    /**
     * The connection's link name, e.g. `mailchimp`.
     */
    linkName: string,
    /**
     * The service it belongs to, e.g. `mailchimp`.
     */
    service: string,
    /**
     * `oauth2`, `api-key`, `basic` or `bearer`.
     */
    authType: string,
    /**
     * Whether it can be used now.
     */
    status: Status,
    /**
     * Scopes granted by the provider.
     */
    scopes: Array<string>,
    /**
     * The API base URL relative request URLs are resolved against.
     */
    baseUrl?: string,
    /**
     * Non-secret values captured at connect time (`api_domain`, `dc`,
     * `instance_url`, ...).
     */
    metadata: Array<[string, string]>,
  }
}
