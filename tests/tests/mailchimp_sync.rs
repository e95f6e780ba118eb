//! The MailChimp sync plugin through the real runtime against mock MailChimp
//! and mock Zoho CRM servers: the auth headers the host injected, subscriber
//! hashes, paging, upsert batches, the incremental kv cursor, 429 retries,
//! problem+json errors and CRM per-record errors — the same scenarios for
//! the plugin in Rust, Python and JavaScript.

use base64::Engine as _;
use junction_host::Language;
use junction_host::manifest::Manifest;
use junction_host::runtime::{ExecutionRecord, Failure, LoadedPlugin};
use junction_host::store::{AuthType, Credentials, Placement, Secret};
use junction_tests::harness::{Harness, bearer};
use junction_tests::mailchimp::{Member, MockMailchimp, subscriber_hash};
use junction_tests::plugins;
use junction_tests::zoho::MockCrm;
use serde_json::json;

const MC_TOKEN: &str = "mc-oauth-token-6f1e";
const MC_API_KEY: &str = "0123456789abcdef0123456789abcdef-us6";
const CRM_TOKEN: &str = "1000.crm-access-token.77";

fn members(count: usize) -> Vec<Member> {
    (0..count)
        .map(|i| {
            Member::new(
                &format!("Person{i}@Example.com"),
                &format!("First{i}"),
                &format!("Last{i}"),
                &format!("2026-11-01T10:{:02}:{:02}+00:00", i / 60, i % 60),
            )
        })
        .collect()
}

struct World {
    harness: Harness,
    mailchimp: MockMailchimp,
    crm: MockCrm,
    plugin: LoadedPlugin,
}

/// MailChimp as an OAuth-style bearer connection whose base URL comes from
/// the `dc`-like metadata, Zoho CRM with `Zoho-oauthtoken` on its `api_domain`.
async fn world(member_count: usize, language: Language) -> World {
    let harness = Harness::new().await;
    let mailchimp = MockMailchimp::start(MC_TOKEN, MC_API_KEY).await;
    let crm = MockCrm::start(CRM_TOKEN).await;
    mailchimp.add_campaign("c100", "list1", members(member_count));
    harness
        .add_connection(
            "mailchimp",
            // MailChimp's `https://{dc}.api.mailchimp.com/3.0`, with the mock's port.
            &format!("http://{{dc}}:{}/3.0", mailchimp.addr.port()),
            AuthType::Bearer,
            Placement::bearer(),
            bearer(MC_TOKEN),
            &[("dc", &mailchimp.addr.ip().to_string())],
        )
        .await;
    harness
        .add_connection(
            "zohocrm",
            "{api_domain}/crm/v7",
            AuthType::Bearer,
            Placement::Header {
                name: "Authorization".into(),
                template: "Zoho-oauthtoken {token}".into(),
            },
            bearer(CRM_TOKEN),
            &[("api_domain", &crm.api_domain())],
        )
        .await;
    let package = plugins::in_language("mailchimp-sync", language);
    let manifest = plugins::example_manifest(&package);
    let plugin = harness.load(
        &package,
        "mailchimp-sync",
        &["mailchimp", "zohocrm"],
        &[],
        &manifest,
    );
    World {
        harness,
        mailchimp,
        crm,
        plugin,
    }
}

impl World {
    /// Runs `campaign.sync` for c100 in pages of 100 and returns the record
    /// and its summary; panics when the sync failed.
    async fn sync(&self) -> (ExecutionRecord, serde_json::Value) {
        let payload = json!({"campaign_id": "c100", "page_size": 100});
        let record = self
            .harness
            .run(&self.plugin, "campaign.sync", payload)
            .await;
        let summary = record
            .output()
            .unwrap_or_else(|| panic!("sync failed: {record:#?}"))
            .clone();
        (record, summary)
    }
}

async fn full_then_incremental_sync(language: Language) {
    let w = world(250, language).await;
    let (record, summary) = w.sync().await;

    assert_eq!(summary["campaign"]["id"], "c100");
    assert_eq!(summary["campaign"]["list_id"], "list1");
    assert_eq!(summary["report"]["unique_opens"], 80);
    assert_eq!(summary["report"]["hard_bounces"], 1);
    assert_eq!(summary["members"]["fetched"], 250);
    assert_eq!(summary["members"]["pages"], 3);
    assert_eq!(summary["members"]["incremental"], false);
    assert_eq!(summary["leads"]["created"], 250);
    assert_eq!(summary["leads"]["updated"], 0);
    assert_eq!(summary["leads"]["failed"], 0);
    assert_eq!(summary["leads"]["batches"], 3);
    assert_eq!(w.crm.lead_count(), 250);

    // Every MailChimp request carried the bearer token the host attached.
    let mc = w.mailchimp.journal.all();
    assert!(!mc.is_empty());
    for request in &mc {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {MC_TOKEN}").as_str())
        );
    }
    // Paging: count/offset as the plugin asked, no cursor on the first run.
    let pages = w
        .mailchimp
        .journal
        .matching("GET", "/3.0/lists/list1/members");
    // The Rust plugin fetches the pages after the first at once, so they
    // may arrive in any order.
    let mut offsets: Vec<u64> = pages
        .iter()
        .map(|r| {
            r.query_value("offset")
                .unwrap_or_default()
                .parse()
                .unwrap_or(u64::MAX)
        })
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, [0, 100, 200]);
    assert!(pages.iter().all(|r| r.query_value("count") == Some("100")));
    assert!(
        pages
            .iter()
            .all(|r| r.query_value("since_last_changed").is_none())
    );
    // Upserts: Zoho-oauthtoken, batches of at most 100, duplicate check on Email.
    let upserts = w.crm.journal.matching("POST", "/crm/v7/Leads/upsert");
    let sizes: Vec<usize> = upserts
        .iter()
        .map(|r| r.json()["data"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    for upsert in &upserts {
        assert_eq!(
            upsert.header("authorization"),
            Some(format!("Zoho-oauthtoken {CRM_TOKEN}").as_str())
        );
        assert_eq!(upsert.json()["duplicate_check_fields"], json!(["Email"]));
    }
    let first = &upserts[0].json()["data"][0];
    assert_eq!(first["Email"], "Person0@Example.com");
    assert_eq!(first["Last_Name"], "Last0");
    assert_eq!(first["First_Name"], "First0");
    assert_eq!(first["Lead_Source"], "MailChimp");
    // The record lists every call, with the connection used.
    assert_eq!(record.calls.len(), 2 + 3 + 3);
    assert!(
        record
            .calls
            .iter()
            .all(|c| c.status == Some(200) || c.status == Some(201))
    );

    // Second run: only members changed since the stored cursor.
    let cursor = summary["cursor"]["next"]
        .as_str()
        .expect("cursor")
        .to_owned();
    w.mailchimp.touch_member(
        "list1",
        "Person3@Example.com",
        "Renamed",
        "2026-11-27T08:00:00+00:00",
    );
    w.mailchimp.touch_member(
        "list1",
        "Person7@Example.com",
        "Moved",
        "2026-11-27T09:00:00+00:00",
    );
    w.mailchimp.journal.clear();
    w.crm.journal.clear();
    let (_, summary) = w.sync().await;
    assert_eq!(summary["members"]["incremental"], true);
    assert_eq!(summary["members"]["fetched"], 2);
    assert_eq!(summary["leads"]["updated"], 2);
    assert_eq!(summary["leads"]["created"], 0);
    assert_eq!(summary["cursor"]["previous"], cursor.as_str());
    assert_eq!(summary["cursor"]["next"], "2026-11-27T09:00:00+00:00");
    let pages = w
        .mailchimp
        .journal
        .matching("GET", "/3.0/lists/list1/members");
    assert_eq!(pages.len(), 1);
    assert_eq!(
        pages[0].query_value("since_last_changed"),
        Some(cursor.as_str())
    );
    let leads = w.crm.leads.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(leads["person3@example.com"]["Last_Name"], "Renamed");
}

async fn rate_limit_is_retried_after_retry_after(language: Language) {
    let w = world(20, language).await;
    w.mailchimp
        .rate_limited
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let record = w
        .harness
        .run(&w.plugin, "campaign.sync", json!({"campaign_id": "c100"}))
        .await;
    let summary = record
        .output()
        .unwrap_or_else(|| panic!("sync failed: {record:#?}"));
    assert_eq!(summary["leads"]["created"], 20);
    let statuses: Vec<Option<u16>> = record
        .calls
        .iter()
        .filter(|c| c.url.contains("/members"))
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [Some(429), Some(200)]);
    assert!(
        record
            .logs
            .iter()
            .any(|l| l.level == "warn" && l.message.contains("rate limit"))
    );
}

async fn problem_json_becomes_a_plugin_error(language: Language) {
    let w = world(1, language).await;
    let record = w
        .harness
        .run(
            &w.plugin,
            "campaign.sync",
            json!({"campaign_id": "missing"}),
        )
        .await;
    let (failure, message) = record.failure().expect("must fail");
    assert_eq!(failure, Failure::PluginError);
    assert!(
        message.contains("404") && message.contains("Resource Not Found"),
        "{message}"
    );
    assert!(message.contains("/campaigns/missing"), "{message}");
}

async fn crm_record_errors_are_counted_and_keep_the_cursor(language: Language) {
    let w = world(5, language).await;
    w.crm
        .rejected
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert("person2@example.com".into());
    let record = w
        .harness
        .run(&w.plugin, "campaign.sync", json!({"campaign_id": "c100"}))
        .await;
    let summary = record
        .output()
        .unwrap_or_else(|| panic!("sync failed: {record:#?}"));
    assert_eq!(summary["leads"]["created"], 4);
    assert_eq!(summary["leads"]["failed"], 1);
    assert_eq!(
        summary["leads"]["errors"][0]["email"],
        "Person2@Example.com"
    );
    assert_eq!(summary["leads"]["errors"][0]["code"], "INVALID_DATA");
    assert_eq!(summary["cursor"]["advanced"], false);
    assert_eq!(
        w.harness
            .store()
            .kv_get("mailchimp-sync", "cursor/list1")
            .await
            .expect("kv"),
        None
    );
}

async fn new_crm_lead_is_subscribed_by_hash(language: Language) {
    let w = world(0, language).await;
    let lead = json!({"Email": "New.Lead@Example.COM", "First_Name": "Nia", "Last_Name": "Lee", "list_id": "list1"});
    let record = w.harness.run(&w.plugin, "lead.created", lead).await;
    let output = record
        .output()
        .unwrap_or_else(|| panic!("failed: {record:#?}"));
    let hash = subscriber_hash("new.lead@example.com");
    assert_eq!(output["subscriber_hash"], hash.as_str());
    assert_eq!(output["status"], "subscribed");
    let puts = w
        .mailchimp
        .journal
        .matching("PUT", "/3.0/lists/list1/members/");
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].path, format!("/3.0/lists/list1/members/{hash}"));
    let body = puts[0].json();
    assert_eq!(body["status_if_new"], "subscribed");
    assert_eq!(
        body["merge_fields"],
        json!({"FNAME": "Nia", "LNAME": "Lee"})
    );
    assert_eq!(body["email_address"], "New.Lead@Example.COM");
}

junction_tests::each_language!(
    full_then_incremental_sync,
    rate_limit_is_retried_after_retry_after,
    problem_json_becomes_a_plugin_error,
    crm_record_errors_are_counted_and_keep_the_cursor,
    new_crm_lead_is_subscribed_by_hash,
    cli_run_builds_and_syncs_against_the_mocks,
);

#[tokio::test]
async fn api_key_goes_as_http_basic() {
    let harness = Harness::new().await;
    let mailchimp = MockMailchimp::start("unused", MC_API_KEY).await;
    mailchimp.add_campaign("c1", "l1", members(3));
    harness
        .add_connection(
            "mailchimp",
            &mailchimp.base_url(),
            AuthType::ApiKey,
            Placement::Basic {
                username: Some("anystring".into()),
            },
            Credentials::ApiKey {
                key: Secret::new(MC_API_KEY.into()),
            },
            &[],
        )
        .await;
    let plugin = harness.load("probe", "probe", &["mailchimp"], &[], &Manifest::default());
    let record = harness
        .run(
            &plugin,
            "call",
            json!({"url": "/campaigns/c1", "connection": "mailchimp"}),
        )
        .await;
    let output = record
        .output()
        .unwrap_or_else(|| panic!("failed: {record:#?}"));
    assert_eq!(output["status"], 200, "{output}");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anystring:{MC_API_KEY}"))
    );
    assert_eq!(
        mailchimp.journal.all()[0].header("authorization"),
        Some(expected.as_str())
    );
}

async fn cli_run_builds_and_syncs_against_the_mocks(language: Language) {
    // `junction run <plugin dir>` as the CLI does it: build, load with the
    // manifest's grants, run on the data directory's store.
    let w = world(12, language).await;
    let data_dir = w.harness.dir.path().to_owned();
    let event_file = data_dir.join("event.json");
    std::fs::write(
        &event_file,
        r#"{"kind": "campaign.sync", "payload": {"campaign_id": "c100"}}"#,
    )
    .expect("write event");
    drop(w.plugin);
    // The CLI opens the store itself; release the harness's handle first.
    let World {
        harness,
        mailchimp: _mailchimp,
        crm,
        ..
    } = w;
    let dir = harness.close();
    let options = junction_host::cli::RunOptions {
        data_dir: dir.path().to_owned(),
        store: Default::default(),
        grants: vec![],
        allow_hosts: vec![],
        manifest: None,
        target_dir: Some(plugins::plugin_target_dir()),
        // The mocks listen on 127.0.0.1.
        allow_private_network: true,
    };
    let record = junction_host::cli::run_once(
        &plugins::workspace_root()
            .join("plugins")
            .join(plugins::in_language("mailchimp-sync", language)),
        event_file.to_str().expect("path"),
        &options,
    )
    .await
    .expect("run");
    let summary = record
        .output()
        .unwrap_or_else(|| panic!("failed: {record:#?}"));
    assert_eq!(summary["leads"]["created"], 12);
    assert_eq!(crm.lead_count(), 12);
}
