declare module 'junction:plugin/kv@0.1.1' {
  /**
   * The value stored under `key`, if any.
   */
  export function get(key: string): Uint8Array | undefined;
  /**
   * Stores `value` under `key`; fails when the key or value is too large.
   */
  export function set(key: string, value: Uint8Array): void;
  /**
   * Removes `key`; removing a missing key is not an error.
   */
  export { _delete as delete };
  function _delete(key: string): void;
  /**
   * The keys that start with `prefix`, in order.
   */
  export function listKeys(prefix: string): Array<string>;
}
