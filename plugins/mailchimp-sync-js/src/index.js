// MailChimp ⇄ Zoho CRM sync in JavaScript, the same function as the Rust
// `mailchimp-sync`:
// * `campaign.sync` {campaign_id, page_size?} (and the MCP tool call with
//   the same arguments): reads the campaign and its report, reads (the first
//   page, then the others several at once with `sendAll`) the list's members
//   changed since the last successful run (a kv cursor),
//   upserts them as Zoho CRM leads in batches of 100, answers a summary.
// * `lead.created`: adds or updates the CRM lead as a list subscriber.
// * `webhook.mailchimp`: a `campaign` notice syncs that campaign.
import { JunctionError, PayloadError, Request, exportHandler, kv, log } from 'junction-sdk';
import * as crm from './crm.js';
import * as mailchimp from './mailchimp.js';

// Members fetched per page when the event does not say.
const DEFAULT_PAGE_SIZE = 500;
// Member pages requested in one batch; the host keeps at most the plugin's
// in-flight limit (6 by default) of them in flight.
const PAGES_AT_ONCE = 12;

// The tool's arguments: campaign.sync's payload.
const CAMPAIGN_SYNC_SCHEMA = {
  type: 'object',
  title: 'CampaignSync',
  description: 'What to sync: a `campaign.sync` payload, and the tool\'s arguments.',
  properties: {
    campaign_id: { type: 'string', description: 'The MailChimp campaign id.' },
    page_size: {
      type: ['integer', 'null'],
      description: 'Members fetched per page (default 500).',
      minimum: 1,
      maximum: 1000,
    },
  },
  required: ['campaign_id'],
};

const cursorKey = (listId) => `cursor/${listId}`;

function mergeField(member, name) {
  const value = (member.merge_fields ?? {})[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function leadFromMember(member, campaignTitle) {
  const email = member.email_address.trim();
  const lead = {
    // Last_Name is mandatory in Zoho CRM; fall back to the mailbox name.
    Last_Name: mergeField(member, 'LNAME') ?? email.split('@')[0],
    Email: email,
    Lead_Source: 'MailChimp',
    Description: `Subscriber (${member.status ?? ''}) of MailChimp campaign "${campaignTitle}"`,
  };
  const first = mergeField(member, 'FNAME');
  if (first !== undefined) lead.First_Name = first;
  return lead;
}

function syncCampaign(campaignId, requestedPageSize) {
  const pageSize = Math.max(1, Math.min(Number(requestedPageSize ?? DEFAULT_PAGE_SIZE) || DEFAULT_PAGE_SIZE, 1000));
  const campaign = mailchimp.get(`/campaigns/${campaignId}`);
  const report = mailchimp.get(`/reports/${campaign.id}`);
  const recipients = campaign.recipients ?? {};
  const settings = campaign.settings ?? {};
  const listId = recipients.list_id;

  const previousCursor = kv.getJson(cursorKey(listId)) ?? null;
  let nextCursor = previousCursor;
  const leads = [];
  const membersPath = `/lists/${listId}/members`;
  const queryAt = (offset) => {
    const query = [['count', String(pageSize)], ['offset', String(offset)]];
    if (previousCursor !== null) query.push(['since_last_changed', previousCursor]);
    return query;
  };
  // The first page says how many members there are; the other pages are
  // then fetched several at once.
  const first = mailchimp.get(membersPath, queryAt(0));
  const later = [];
  if ((first.members ?? []).length > 0) {
    for (let offset = pageSize; offset < (first.total_items ?? 0); offset += pageSize) later.push(offset);
  }
  const documents = [first];
  for (let start = 0; start < later.length; start += PAGES_AT_ONCE) {
    const batch = later.slice(start, start + PAGES_AT_ONCE);
    documents.push(...mailchimp.getEach(membersPath, batch.map(queryAt)));
  }
  for (const page of documents) {
    for (const member of page.members ?? []) {
      const changed = member.last_changed;
      if (changed && (nextCursor === null || changed > nextCursor)) nextCursor = changed;
      leads.push(leadFromMember(member, settings.title ?? ''));
    }
  }
  const pages = documents.length;
  log.info(`campaign ${campaign.id}: ${leads.length} changed members on list ${listId} in ${pages} pages`);

  const totals = crm.newTotals();
  crm.upsertLeads(leads, totals);
  // Advance the cursor only when every record landed, so failed ones are
  // picked up again by the next run.
  const cursorAdvanced = totals.failed === 0 && nextCursor !== previousCursor;
  if (cursorAdvanced && nextCursor !== null) kv.setJson(cursorKey(listId), nextCursor);
  if (totals.failed > 0) log.warn(`${totals.failed} leads were refused by Zoho CRM; the cursor stays put`);

  const bounces = report.bounces ?? {};
  const opens = report.opens ?? {};
  const clicks = report.clicks ?? {};
  return {
    campaign: {
      id: campaign.id,
      title: settings.title ?? '',
      subject_line: settings.subject_line ?? '',
      status: campaign.status ?? '',
      emails_sent: campaign.emails_sent ?? 0,
      send_time: campaign.send_time ?? null,
      list_id: listId,
      list_name: recipients.list_name ?? '',
      recipient_count: recipients.recipient_count ?? 0,
    },
    report: {
      emails_sent: report.emails_sent ?? 0,
      unsubscribed: report.unsubscribed ?? 0,
      hard_bounces: bounces.hard_bounces ?? 0,
      soft_bounces: bounces.soft_bounces ?? 0,
      opens_total: opens.opens_total ?? 0,
      unique_opens: opens.unique_opens ?? 0,
      open_rate: opens.open_rate ?? 0,
      clicks_total: clicks.clicks_total ?? 0,
      unique_clicks: clicks.unique_clicks ?? 0,
      click_rate: clicks.click_rate ?? 0,
    },
    members: { fetched: leads.length, pages, incremental: previousCursor !== null },
    leads: totals,
    cursor: { previous: previousCursor, next: nextCursor, advanced: cursorAdvanced },
  };
}

function subscribeLead(lead) {
  const email = lead.Email;
  if (typeof email !== 'string' || !email.includes('@')) throw new JunctionError('the lead has no valid `Email`');
  const listId = lead.list_id ?? kv.getJson('config/list_id');
  if (!listId) {
    throw new JunctionError('no MailChimp list: send `list_id` with the lead or store it under kv `config/list_id`');
  }
  const hash = mailchimp.subscriberHash(email);
  const body = {
    email_address: email,
    status_if_new: 'subscribed',
    merge_fields: { FNAME: lead.First_Name ?? '', LNAME: lead.Last_Name ?? '' },
  };
  const member = mailchimp.send(Request.put(`/lists/${listId}/members/${hash}`).json(body)).json();
  log.info(`lead ${email} is ${member.status} on list ${listId}`);
  return { list_id: listId, subscriber_hash: hash, id: member.id ?? null, status: member.status ?? null };
}

function route(event) {
  switch (event.kind) {
    case 'campaign.sync':
    case 'tool.call': {
      const request = event.payload();
      if (!request || typeof request.campaign_id !== 'string') {
        throw new PayloadError('the payload needs a string `campaign_id`');
      }
      return syncCampaign(request.campaign_id, request.page_size);
    }
    case 'lead.created': {
      const lead = event.payload();
      if (!lead || typeof lead !== 'object') throw new PayloadError('the lead must be a JSON object');
      return subscribeLead(lead);
    }
    case 'webhook.mailchimp': {
      const body = (event.payload() ?? {}).body ?? {};
      if (body.type === 'campaign' && body['data[id]']) return syncCampaign(body['data[id]'], undefined);
      throw new JunctionError(
        `the MailChimp webhook sent \`${body.type ?? 'nothing'}\` without a campaign id; only \`campaign\` notices are synced`,
      );
    }
    default:
      throw new JunctionError(
        `mailchimp-sync handles campaign.sync (or its tool call) and lead.created, not \`${event.kind}\``,
      );
  }
}

export const handle = exportHandler(route, { toolInputSchema: CAMPAIGN_SYNC_SCHEMA });
