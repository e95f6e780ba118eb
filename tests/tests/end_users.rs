//! End users through the real server: one link name, `mailchimp`, means
//! Ana's account in Ana's executions and Ben's in Ben's (two mock MailChimp
//! servers that each accept only their own token); the organisation's CRM
//! stands in only where the manifest says `org-fallback`; executions,
//! deliveries and the stream are recorded and filtered by end user; an end
//! user's OAuth connection is authorised at a fake provider, and deleting
//! the end user revokes it there and removes it here.

use std::time::Duration;

use junction_tests::end_users::{ANA_TOKEN, BEN_TOKEN, accounts, saw_only};
use junction_tests::host::{TestHost, csrf_of};
use junction_tests::oauth::{FakeProvider, browser, follow, service_json};
use junction_tests::plugins::{component_bytes, example_manifest_json};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn sync_as(host: &TestHost, end_user: Option<&str>, campaign: &str) -> Value {
    let mut body = json!({"kind": "campaign.sync", "payload": {"campaign_id": campaign}});
    if let Some(user) = end_user {
        body["end_user"] = json!(user);
    }
    let run = host.post("/v1/plugins/mailchimp-sync/invoke", &body).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    run.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_end_user_runs_with_their_own_account() {
    let world = accounts().await;
    let host = &world.host;

    let ana = sync_as(host, Some("ana"), "ca").await;
    assert_eq!(ana["status"], "ok", "{ana}");
    assert_eq!(ana["end_user"], "ana");
    assert_eq!(ana["output"]["campaign"]["list_id"], "list-ana", "{ana}");
    let ben = sync_as(host, Some("ben"), "cb").await;
    assert_eq!(ben["status"], "ok", "{ben}");
    assert_eq!(ben["output"]["campaign"]["list_id"], "list-ben", "{ben}");
    // Each account saw only its own token; the CRM got both audiences.
    for (account, token) in [(&world.ana, ANA_TOKEN), (&world.ben, BEN_TOKEN)] {
        let seen = account.journal.all();
        assert!(!seen.is_empty());
        assert!(saw_only(account, token), "{seen:?}");
    }
    assert_eq!(world.crm.lead_count(), 5);

    // Ana's account has no campaign `cb`: her run cannot reach Ben's data.
    let crossed = sync_as(host, Some("ana"), "cb").await;
    assert_eq!(crossed["status"], "failed", "{crossed}");
    assert!(
        saw_only(&world.ben, BEN_TOKEN),
        "Ben's account never saw Ana's run"
    );
    // The organisation has no MailChimp connection of its own.
    let org = sync_as(host, None, "ca").await;
    assert_eq!(org["status"], "failed", "{org}");
    assert!(
        org["message"]
            .as_str()
            .unwrap_or("")
            .contains("no connection has link name `mailchimp`"),
        "{org}"
    );
    assert!(org.get("end_user").is_none());

    // Without `org-fallback`, an end user's run does not borrow the CRM.
    let mut strict = example_manifest_json("mailchimp-sync");
    strict
        .as_object_mut()
        .expect("manifest")
        .remove("org-fallback");
    let up = host
        .upload(
            "strict-sync",
            component_bytes("mailchimp-sync"),
            Some(&strict),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let run = host
        .post(
            "/v1/plugins/strict-sync/invoke",
            &json!({"kind": "campaign.sync", "payload": {"campaign_id": "ca"}, "end_user": "ana"}),
        )
        .await;
    assert_eq!(run.json["status"], "failed", "{}", run.text);
    assert!(
        run.text
            .contains("end user `ana` has no connection `zohocrm`"),
        "{}",
        run.text
    );

    // Executions are recorded and listed by end user.
    let listed = host.get("/v1/executions?end_user=ana").await;
    let listed = listed.json.as_array().expect("list").clone();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|e| e["end_user"] == "ana"));
    let bens = host
        .get("/v1/executions?end_user=ben&plugin=mailchimp-sync")
        .await;
    assert_eq!(bens.json.as_array().expect("list").len(), 1);

    // Events carry the end user to their deliveries.
    let sent = host
        .post(
            "/v1/events",
            &json!({"kind": "campaign.sync", "payload": {"campaign_id": "cb"}, "end_user": "ben"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let event = host.settled(sent.json["id"].as_str().expect("id")).await;
    assert_eq!(event["end_user"], "ben", "{event}");
    assert_eq!(event["deliveries"][0]["state"], "succeeded", "{event}");
    let deliveries = host.get("/v1/deliveries?end_user=ben").await;
    assert_eq!(
        deliveries.json.as_array().expect("list").len(),
        2,
        "{}",
        deliveries.text
    );
    let none = host.get("/v1/deliveries?end_user=ana").await;
    assert_eq!(none.json, json!([]));

    // A malformed end user is refused, naming the field.
    for bad in [" ana", "", "a\u{7}b"] {
        let run = host
            .post(
                "/v1/plugins/mailchimp-sync/invoke",
                &json!({"kind": "campaign.sync", "payload": {}, "end_user": bad}),
            )
            .await;
        assert_eq!(run.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", run.text);
        assert_eq!(run.field(), Some("end_user"), "{}", run.text);
    }
    let bad = host.get("/v1/connections?end_user=%20x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);

    // Listings never show a token.
    for path in [
        "/v1/connections",
        "/v1/connections?end_user=ana",
        "/v1/connections/mailchimp?end_user=ben",
        "/v1/executions?end_user=ana",
    ] {
        let page = host.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        assert!(
            !page.text.contains(ANA_TOKEN) && !page.text.contains(BEN_TOKEN),
            "{path}"
        );
    }
    let all = host.get("/v1/connections").await;
    let owners: Vec<Value> = all
        .json
        .as_array()
        .expect("list")
        .iter()
        .map(|c| json!([c["link_name"], c.get("end_user")]))
        .collect();
    assert_eq!(
        owners,
        [
            json!(["zohocrm", null]),
            json!(["mailchimp", "ana"]),
            json!(["mailchimp", "ben"])
        ]
    );
    let org_only = host.get("/v1/connections?owner=organisation").await;
    assert_eq!(org_only.json.as_array().expect("list").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_follows_one_end_user() {
    let world = accounts().await;
    let host = &world.host;
    let mut stream = host
        .request(reqwest::Method::GET, "/v1/executions/stream?end_user=ben")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    sync_as(host, Some("ana"), "ca").await;
    let ben = sync_as(host, Some("ben"), "cb").await;
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.chunk().await.expect("chunk") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: execution") && text.contains("\n\n") {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no execution streamed: {text}");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .expect("data");
    let summary: Value = serde_json::from_str(data.trim()).expect("json");
    assert_eq!(summary["id"], ben["id"], "Ana's run is not Ben's stream");
    assert_eq!(summary["end_user"], "ben");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_users_oauth_connection_is_authorised_and_revoked_with_them() {
    let mut host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    host.create("/v1/services", &service_json("fake", &provider, json!({})))
        .await;
    let user = "ana@example.com";
    let query = "end_user=ana%40example.com";
    for body in [
        json!({"link_name": "fake", "service": "fake", "end_user": user}),
        json!({"link_name": "fake", "service": "fake"}),
    ] {
        host.create("/v1/connections", &body).await;
    }
    let started = host
        .post(
            &format!("/v1/connections/fake/authorize?{query}"),
            &json!({}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let callback = follow(started.json["authorize_url"].as_str().expect("url")).await;
    let page = browser().get(&callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("page");
    assert!(
        html.contains("of end user `ana@example.com` is connected"),
        "{html}"
    );
    let mine = host.get(&format!("/v1/connections/fake?{query}")).await;
    assert_eq!(mine.json["status"], "connected", "{}", mine.text);
    assert_eq!(mine.json["end_user"], user);
    let org = host.get("/v1/connections/fake").await;
    assert_eq!(
        org.json["status"], "disconnected",
        "the organisation's is another connection"
    );
    let listed = host.get("/v1/end-users").await;
    assert_eq!(listed.json, json!([{"id": user, "connections": 1}]));

    // A plugin run for her calls the API with her token; the plugin never sees it.
    let up = host
        .upload(
            "probe",
            component_bytes("probe"),
            Some(&json!({"connections": ["fake"]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let call = json!({"kind": "call", "payload": {"url": "/api/me", "connection": "fake"}, "end_user": user});
    let run = host.post("/v1/plugins/probe/invoke", &call).await;
    assert_eq!(run.json["output"]["status"], 200, "{}", run.text);
    let token = provider
        .lock()
        .access_tokens
        .first()
        .cloned()
        .expect("issued");
    assert!(!run.text.contains(&token));

    host.stop().await;
    let db = std::fs::read(host.dir.path().join("junction.redb")).expect("the store file");
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes()),
        "an end user's token is sealed in the store"
    );
    host.restart().await;

    let deleted = host
        .delete(&format!("/v1/end-users/{}", "ana%40example.com"))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.json["deleted"], json!(["fake"]));
    assert_eq!(deleted.json["revoked"], json!(["fake"]));
    assert_eq!(deleted.json["problems"], json!([]), "{}", deleted.text);
    assert_eq!(
        provider.lock().revocations.len(),
        2,
        "refresh and access token"
    );
    assert!(provider.lock().access_tokens.is_empty());
    let gone = host.get(&format!("/v1/connections/fake?{query}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        host.get("/v1/connections/fake").await.status,
        StatusCode::OK
    );
    assert_eq!(host.get("/v1/end-users").await.json, json!([]));
    let again = host.delete("/v1/end-users/ana%40example.com").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_end_users_and_deletes_one() {
    let world = accounts().await;
    let host = &world.host;
    let session = host.console_session().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = |path: &str| {
        http.get(format!("{}{path}", host.url))
            .header("cookie", &session)
            .send()
    };
    let list = page("/end-users").await.expect("page");
    assert_eq!(list.status(), StatusCode::OK);
    let html = list.text().await.expect("html");
    assert!(html.contains("href=\"/end-users/ana\""), "{html}");
    assert!(html.contains("href=\"/end-users/ben\""), "{html}");
    let connections = page("/connections")
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        connections.contains("href=\"/connections/mailchimp?end_user=ana\""),
        "{connections}"
    );
    let ana = page("/connections/mailchimp?end_user=ana")
        .await
        .expect("page");
    assert_eq!(ana.status(), StatusCode::OK);
    let html = ana.text().await.expect("html");
    assert!(
        html.contains("end user <a href=\"/end-users/ana\">"),
        "{html}"
    );
    assert!(
        html.contains("action=\"/connections/mailchimp/delete?end_user=ana\""),
        "{html}"
    );
    assert!(!html.contains(ANA_TOKEN));

    let user = page("/end-users/ana").await.expect("page");
    let html = user.text().await.expect("html");
    let csrf = csrf_of(&html);
    let deleted = http
        .post(format!("{}/end-users/ana/delete", host.url))
        .header("cookie", &session)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let after = host.get("/v1/end-users").await;
    assert_eq!(after.json, json!([{"id": "ben", "connections": 1}]));
    assert_eq!(
        page("/end-users/ana").await.expect("page").status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_issues_connect_links_and_api_keys_and_shows_tools() {
    let world = accounts().await;
    let host = &world.host;
    let session = host.console_session().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: String| {
        http.get(format!("{}{path}", host.url))
            .header("cookie", &session)
            .send()
    };
    let html = get("/end-users".into())
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let csrf = csrf_of(&html);
    assert!(html.contains("<option value=\"mailchimp-mock\">"), "{html}");

    // A connect link for a new end user, to copy.
    let issued = http
        .post(format!("{}/end-users/connect-link", host.url))
        .header("cookie", &session)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("end_user", "cyd"),
            ("service", "mailchimp-mock"),
            ("link_name", "mailchimp"),
        ])
        .send()
        .await
        .expect("issue");
    assert_eq!(issued.status(), StatusCode::OK);
    let html = issued.text().await.expect("html");
    let url = html
        .split("id=\"connect-link-url\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the link to copy")
        .to_owned();
    assert!(url.starts_with(&format!("{}/connect/", host.url)), "{url}");
    let hosted = reqwest::get(&url).await.expect("hosted page");
    assert_eq!(hosted.status(), StatusCode::OK);
    let refused = http
        .post(format!("{}/end-users/connect-link", host.url))
        .header("cookie", &session)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("end_user", "a b"),
            ("service", "mailchimp-mock"),
        ])
        .send()
        .await
        .expect("issue");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // An API key, shown once.
    let html = get("/api-keys".into())
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("value=\"mailchimp-sync\""), "{html}");
    let made = http
        .post(format!("{}/api-keys", host.url))
        .header("cookie", &session)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Ana's app"),
            ("end_user", "ana"),
            ("plugin", "mailchimp-sync"),
        ])
        .send()
        .await
        .expect("issue key");
    assert_eq!(made.status(), StatusCode::OK);
    let html = made.text().await.expect("html");
    let key = html
        .split("id=\"issued-key\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the key, once")
        .to_owned();
    assert!(key.starts_with("jck_"), "{key}");
    let again = get("/api-keys".into())
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(!again.contains(&key), "the key is shown once");
    assert!(again.contains("Ana&#39;s app"), "{again}");
    let listed = host.get("/v1/api-keys").await;
    assert_eq!(listed.json[0]["end_user"], "ana", "{}", listed.text);
    assert_eq!(listed.json[0]["plugins"], json!(["mailchimp-sync"]));

    // The plugin's page says which tool it offers.
    let html = get("/plugins/mailchimp-sync".into())
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("<code>sync_mailchimp_campaign</code>"),
        "{html}"
    );
    assert!(html.contains("campaign_id"), "{html}");
}
