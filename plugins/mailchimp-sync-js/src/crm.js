// Zoho CRM v2 through the `zohocrm` connection: lead upserts in batches of
// at most 100, with per-record results.
import { JunctionError, Request } from 'junction-sdk';

export const CONNECTION = 'zohocrm';
// Zoho CRM takes at most this many records per call.
const MAX_BATCH = 100;

export function newTotals() {
  return { created: 0, updated: 0, failed: 0, batches: 0, errors: [] };
}

/** Upserts leads (deduplicated on Email) in batches of at most 100. */
export function upsertLeads(leads, totals) {
  for (let start = 0; start < leads.length; start += MAX_BATCH) {
    const batch = leads.slice(start, start + MAX_BATCH);
    const body = { data: batch, duplicate_check_fields: ['Email'], trigger: [] };
    const response = Request.post('/Leads/upsert').connection(CONNECTION).json(body).send();
    // 2xx, and 207 for mixed results (Zoho's multi-status), carry per-record results.
    if (!response.isSuccess) {
      let reason;
      try {
        const error = response.json();
        reason = `${error.code ?? ''}: ${error.message ?? ''}`;
      } catch {
        reason = response.text();
      }
      throw new JunctionError(`Zoho CRM upsert failed with HTTP ${response.status}: ${reason}`);
    }
    let results;
    try {
      results = response.json().data;
    } catch (err) {
      throw new JunctionError(`Zoho CRM upsert: unexpected response: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!Array.isArray(results)) {
      throw new JunctionError('Zoho CRM upsert: unexpected response: no `data` list');
    }
    totals.batches += 1;
    batch.forEach((lead, i) => {
      const result = results[i];
      if (!result) return;
      if (result.status === 'success') {
        if (result.action === 'update') totals.updated += 1;
        else totals.created += 1;
      } else {
        totals.failed += 1;
        totals.errors.push({ email: lead.Email, code: result.code ?? '', message: result.message ?? '' });
      }
    });
  }
}
