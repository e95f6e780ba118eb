// The smallest useful Junction plugin in JavaScript: echoes the event and
// logs a line. Copy this folder to start a new plugin.
import { exportHandler, log } from 'junction-sdk';

export const handle = exportHandler((event) => {
  log.info(`hello received a \`${event.kind}\` event`);
  return { event_id: event.id, kind: event.kind, payload: event.payload() };
});
