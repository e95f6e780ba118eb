declare module 'junction:plugin/log@0.1.1' {
  /**
   * Appends one line to the execution's log.
   */
  export function log(level: Level, message: string): void;
  /**
   * How important a line is.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
