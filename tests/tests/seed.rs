//! The seed's scenario on the catalog's own services: `mailchimp` and
//! `zohocrm` are made from the built-in catalog entries — their base URL
//! templates, credential placements, metadata capture and quirks — with
//! only the origins pointed at local mocks, authorised through fake
//! providers that behave like MailChimp (no refresh token, `expires_in: 0`,
//! `scope: null`, the metadata call for `dc`) and Zoho (`api_domain` in the
//! token answer, no new refresh token on refresh, `Zoho-oauthtoken`), and
//! then `plugins/mailchimp-sync` runs exactly as written.

use junction_tests::host::TestHost;
use junction_tests::mailchimp::{Member, MockMailchimp};
use junction_tests::oauth::{CLIENT_ID, CLIENT_SECRET, FakeProvider, connect};
use junction_tests::plugins::{self, component_bytes};
use junction_tests::zoho::MockCrm;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The catalog entry `id` as the API lists it.
async fn catalog_entry(host: &TestHost, id: &str) -> Value {
    let listed = host.get("/v1/services").await;
    listed
        .json
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == id && s["source"] == "catalog")
        .cloned()
        .unwrap_or_else(|| panic!("catalog entry {id}: {}", listed.text))
}

/// The entry as a service definition named `name`, every string with its
/// real origins replaced by the mocks' (`(from, to)` pairs, in order).
fn retargeted(entry: &Value, name: &str, origins: &[(&str, String)]) -> Value {
    let mut text = serde_json::to_string(entry).expect("json");
    for (from, to) in origins {
        text = text.replace(from, to);
    }
    let mut service: Value = serde_json::from_str(&text).expect("json");
    let object = service.as_object_mut().expect("object");
    for listed_only in [
        "source",
        "configured",
        "has_client_secret",
        "problem",
        "created_at_ms",
        "display_name",
        "category",
        "docs",
    ] {
        object.remove(listed_only);
    }
    object.insert("name".into(), json!(name));
    object.insert("client_secret".into(), json!(CLIENT_SECRET));
    service["oauth"]["client_id"] = json!(CLIENT_ID);
    service
}

#[tokio::test]
async fn the_seed_runs_on_services_made_from_the_catalog() {
    let host = TestHost::start().await;
    let mc_auth = FakeProvider::start().await;
    let zoho_auth = FakeProvider::start().await;
    let mailchimp = MockMailchimp::start_with(mc_auth.token_check(), "unused-us6").await;
    let crm = MockCrm::start_with(zoho_auth.token_check()).await;
    {
        // MailChimp: no refresh token, tokens that never expire, no scopes;
        // the data centre comes from the metadata call.
        let mut p = mc_auth.lock();
        p.issue_refresh_tokens = false;
        p.expires_in = "0".into();
        p.scope = Value::Null;
        p.dc = mailchimp.addr.ip().to_string();
    }
    {
        // Zoho: `api_domain` in the token answer, an hour's tokens, and a
        // refresh that keeps the refresh token.
        let mut p = zoho_auth.lock();
        p.api_domain = crm.api_domain();
        p.rotate_refresh_tokens = false;
        p.expires_in = "3600".into();
    }
    let members: Vec<Member> = (0..4)
        .map(|i| {
            Member::new(
                &format!("seed{i}@example.com"),
                "Ada",
                &format!("Lovelace{i}"),
                "2026-11-01T10:00:00+00:00",
            )
        })
        .collect();
    mailchimp.add_campaign("c1", "list1", members);

    let mc_entry = catalog_entry(&host, "mailchimp").await;
    assert_eq!(mc_entry["base_url"], "https://{dc}.api.mailchimp.com/3.0");
    let mc_service = retargeted(
        &mc_entry,
        "mailchimp",
        &[
            (
                "https://login.mailchimp.com/oauth2/authorize",
                format!("{}/authorize", mc_auth.origin()),
            ),
            (
                "https://login.mailchimp.com/oauth2/token",
                format!("{}/token", mc_auth.origin()),
            ),
            (
                "https://login.mailchimp.com/oauth2/metadata",
                format!("{}/metadata", mc_auth.origin()),
            ),
            // `{dc}` stays a template: the mock is `{dc}` (its address) on its port.
            (
                "https://{dc}.api.mailchimp.com",
                format!("http://{{dc}}:{}", mailchimp.addr.port()),
            ),
        ],
    );
    let created = host.create("/v1/services", &mc_service).await;
    assert_eq!(
        created.json["base_url"],
        format!("http://{{dc}}:{}/3.0", mailchimp.addr.port())
    );

    let zoho_entry = catalog_entry(&host, "zoho-crm").await;
    assert_eq!(zoho_entry["base_url"], "{api_domain}/crm/v7");
    assert_eq!(
        zoho_entry["placement"]["template"],
        "Zoho-oauthtoken {token}"
    );
    let zoho_service = retargeted(
        &zoho_entry,
        "zoho-crm",
        &[
            (
                "https://accounts.zoho.com/oauth/v2/token/revoke",
                format!("{}/revoke", zoho_auth.origin()),
            ),
            (
                "https://accounts.zoho.com/oauth/v2/auth",
                format!("{}/authorize", zoho_auth.origin()),
            ),
            (
                "https://accounts.zoho.com/oauth/v2/token",
                format!("{}/token", zoho_auth.origin()),
            ),
            ("https://*.zohoapis.com", crm.api_domain()),
        ],
    );
    host.create("/v1/services", &zoho_service).await;

    for (link, service) in [("mailchimp", "mailchimp"), ("zohocrm", "zoho-crm")] {
        host.create(
            "/v1/connections",
            &json!({"link_name": link, "service": service}),
        )
        .await;
        connect(&host, link).await;
    }
    let mc = host.get("/v1/connections/mailchimp").await;
    assert_eq!(mc.json["status"], "connected", "{}", mc.text);
    assert_eq!(mc.json["metadata"]["dc"], mailchimp.addr.ip().to_string());
    assert!(mc.json["expires_at_ms"].is_null(), "{}", mc.text);
    let zoho = host.get("/v1/connections/zohocrm").await;
    assert_eq!(zoho.json["metadata"]["api_domain"], crm.api_domain());
    // The Zoho authorize request asked for offline access, as the catalog says.
    let asked = zoho_auth.lock().authorize_requests[0].clone();
    assert_eq!(
        asked.get("access_type").map(String::as_str),
        Some("offline")
    );

    let manifest = plugins::example_manifest_json("mailchimp-sync");
    let up = host
        .upload(
            "mailchimp-sync",
            component_bytes("mailchimp-sync"),
            Some(&manifest),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);

    let run = host
        .invoke(
            "mailchimp-sync",
            "campaign.sync",
            json!({"campaign_id": "c1", "page_size": 100}),
        )
        .await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    assert_eq!(crm.lead_count(), 4);
    let upserts = crm.journal.matching("POST", "/crm/v7/Leads/upsert");
    assert!(
        !upserts.is_empty(),
        "the plugin's relative path lands on v7"
    );
    assert!(
        upserts[0]
            .header("authorization")
            .is_some_and(|h| h.starts_with("Zoho-oauthtoken ")),
        "{:?}",
        upserts[0]
    );

    // Zoho's token is revoked before the next run: one refresh, which keeps
    // the refresh token; a second refresh later uses the same one.
    zoho_auth.lock().expire_access_tokens();
    // One member changed since (written in another offset: compared as an instant).
    mailchimp.touch_member(
        "list1",
        "seed0@example.com",
        "Byron",
        "2026-11-02T10:00:00+01:00",
    );
    let again = host
        .invoke(
            "mailchimp-sync",
            "campaign.sync",
            json!({"campaign_id": "c1", "page_size": 100}),
        )
        .await;
    assert_eq!(again.json["status"], "ok", "{}", again.text);
    assert_eq!(
        again.json["output"]["leads"]["updated"], 1,
        "{}",
        again.text
    );
    assert_eq!(zoho_auth.lock().refresh_requests, 1, "{}", again.text);
    let refreshed = host
        .post("/v1/connections/zohocrm/refresh", &json!({}))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let refresh_tokens: Vec<String> = zoho_auth
        .lock()
        .token_requests
        .iter()
        .filter_map(|f| f.get("refresh_token").cloned())
        .collect();
    assert_eq!(refresh_tokens.len(), 2);
    assert_eq!(refresh_tokens[0], refresh_tokens[1], "Zoho does not rotate");

    // MailChimp has nothing to refresh, and "Refresh now" breaks nothing.
    let nothing = host
        .post("/v1/connections/mailchimp/refresh", &json!({}))
        .await;
    assert_eq!(nothing.status, StatusCode::CONFLICT, "{}", nothing.text);
    let mc = host.get("/v1/connections/mailchimp").await;
    assert_eq!(mc.json["status"], "connected", "{}", mc.text);
    assert_eq!(mc_auth.lock().refresh_requests, 0);
    assert!(!run.text.contains("access-token"), "no token in the record");
}
