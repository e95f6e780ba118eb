/// <reference path="./interfaces/junction-plugin-connections.d.ts" />
/// <reference path="./interfaces/junction-plugin-http.d.ts" />
/// <reference path="./interfaces/junction-plugin-kv.d.ts" />
/// <reference path="./interfaces/junction-plugin-log.d.ts" />
declare module 'junction:plugin/plugin@0.1.1' {
  /**
  * The event that made the host run the plugin.
  */
  /**
  * The event that made the host run the plugin.
  */
  export interface Event {
    /**
    * Unique id of the event; the same on a retried delivery, so plugins can
    * deduplicate.
    */
    id: string,
    /**
    * The event kind, e.g. `campaign.sync` or `lead.created`.
    */
    kind: string,
    /**
    * The event's payload as JSON text.
    */
    payload: string,
    /**
    * When the event happened, in milliseconds since the Unix epoch.
    */
    occurredAtMs: bigint,
  }
  export type * as JunctionPluginConnections011 from 'junction:plugin/connections@0.1.1'; // import junction:plugin/connections@0.1.1
  export type * as JunctionPluginHttp011 from 'junction:plugin/http@0.1.1'; // import junction:plugin/http@0.1.1
  export type * as JunctionPluginKv011 from 'junction:plugin/kv@0.1.1'; // import junction:plugin/kv@0.1.1
  export type * as JunctionPluginLog011 from 'junction:plugin/log@0.1.1'; // import junction:plugin/log@0.1.1
  /**
  * Handles one event: `ok` carries a JSON result, `err` a message for the
  * execution record.
  */
  export function handle(event: Event): string;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
