//! The real server on the PostgreSQL backend (a throwaway cluster started
//! by scripts/test.sh): what a host does on redb it does on PostgreSQL —
//! deploy, invoke, accept and run events with idempotency, keep it all
//! across a restart — and a second host on the same database serves the
//! plugins, connections and admin token the first one stored.

use std::time::{Duration, Instant};

use junction_tests::host::TestHost;
use junction_tests::plugins::component_bytes;
use junction_tests::postgres::fresh_database;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn on_postgres() -> TestHost {
    let store = fresh_database().await;
    TestHost::start_with(move |config| config.store = store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_on_postgres_deploys_invokes_runs_events_and_keeps_them_across_a_restart() {
    let mut host = on_postgres().await;
    let up = host
        .upload(
            "hello",
            component_bytes("hello"),
            Some(&json!({"triggers": [{"event": "lead.*"}]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    assert_eq!(up.json["version"], 1);

    let run = host.invoke("hello", "hello", json!({"name": "Ada"})).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.json["output"]["payload"]["name"], "Ada");

    let body = json!({"kind": "lead.created", "payload": {"id": 1}, "idempotency_key": "lead-1"});
    let sent = host.post("/v1/events", &body).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    assert_eq!(sent.json["matched"], 1);
    let id = sent.json["id"].as_str().expect("event id").to_owned();
    let again = host.post("/v1/events", &body).await;
    assert_eq!(
        again.json["id"],
        id.as_str(),
        "the key answers with the first event"
    );
    let event = host.settled(&id).await;
    assert_eq!(event["deliveries"][0]["state"], "succeeded", "{event}");

    host.restart().await;
    let plugin = host.get("/v1/plugins/hello").await;
    assert_eq!(plugin.status, StatusCode::OK, "{}", plugin.text);
    let run = host
        .invoke("hello", "hello", json!({"name": "Grace"}))
        .await;
    assert_eq!(
        run.json["output"]["payload"]["name"], "Grace",
        "{}",
        run.text
    );
    let executions = host.get("/v1/executions?plugin=hello").await;
    let listed = executions
        .json
        .as_array()
        .map(Vec::len)
        .unwrap_or_else(|| panic!("executions: {}", executions.text));
    assert_eq!(
        listed, 3,
        "two invokes and one delivery: {}",
        executions.text
    );
    let kept = host.get(&format!("/v1/events/{id}")).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_on_the_same_database_serves_what_the_first_stored() {
    let first = on_postgres().await;
    let service = first
        .create(
            "/v1/services",
            &json!({"name": "crm", "auth_type": "bearer", "base_url": "https://crm.example.com"}),
        )
        .await;
    assert_eq!(service.status, StatusCode::CREATED, "{}", service.text);
    let connection = first
        .create(
            "/v1/connections",
            &json!({"link_name": "crm", "service": "crm", "credentials": {"type": "bearer", "token": "tok-shared-1234"}}),
        )
        .await;
    assert_eq!(
        connection.status,
        StatusCode::CREATED,
        "{}",
        connection.text
    );
    let up = first
        .upload("hello", component_bytes("hello"), None, None)
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);

    let second = first.beside().await;
    let run = second
        .invoke("hello", "hello", json!({"name": "Lin"}))
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.json["output"]["payload"]["name"], "Lin");
    let seen = second.get("/v1/connections/crm").await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    assert!(!seen.text.contains("tok-shared-1234"), "{}", seen.text);
    // What the second host records, the first one lists.
    let id = run.json["id"].as_str().expect("execution id");
    let record = first.get(&format!("/v1/executions/{id}")).await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hosts_refresh_an_expired_token_once() {
    use junction_tests::oauth::{self, FakeProvider, service_json};
    let first = on_postgres().await;
    let provider = FakeProvider::start().await;
    first
        .create("/v1/services", &service_json("fake", &provider, json!({})))
        .await;
    first
        .create(
            "/v1/connections",
            &json!({"link_name": "fake", "service": "fake"}),
        )
        .await;
    // Tokens that expire within the refresh margin: every call wants a refresh.
    provider.lock().expires_in = "60".into();
    oauth::connect(&first, "fake").await;
    provider.lock().expires_in = "3600".into();
    // A slow token endpoint: every host is asking while the refresh runs.
    provider.lock().token_delay = Duration::from_millis(500);
    let up = first
        .upload(
            "probe",
            component_bytes("probe"),
            Some(&json!({"connections": ["fake"]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let second = first.beside().await;
    let third = first.beside().await;
    let hosts = std::sync::Arc::new([first, second, third]);

    let mut calls = Vec::new();
    for n in 0..600 {
        let hosts = hosts.clone();
        calls.push(tokio::spawn(async move {
            hosts[n % 3]
                .invoke(
                    "probe",
                    "call",
                    json!({"url": "/api/me", "connection": "fake"}),
                )
                .await
        }));
    }
    for call in calls {
        let run = call.await.expect("call task");
        assert_eq!(run.json["output"]["status"], 200, "{}", run.text);
    }
    // The provider rotates refresh tokens and revokes the grant when one is
    // presented twice: a second refresh on any host would have failed calls.
    assert_eq!(provider.lock().refresh_requests, 1);
}

/// Waits until `ready` answers true, at most `within`; how long it took.
async fn until<F, Fut>(within: Duration, what: &str, mut ready: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !ready().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// Whether `host` runs `version` of `plugin` itself: `loaded_from` is only
/// set for the version its registry holds (asking does not load anything).
async fn runs_version(host: &TestHost, plugin: &str, version: u64) -> bool {
    let answer = host.get(&format!("/v1/plugins/{plugin}")).await;
    answer.json["active_version"] == version && !answer.json["loaded_from"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_one_host_changes_every_host_serves_within_a_second() {
    let a = on_postgres().await;
    let b = a.beside().await;
    let c = a.beside().await;
    let second = Duration::from_secs(1);

    // A deploy on A: C loads it by itself (told, not asked) and runs it.
    let up = a
        .upload(
            "hello",
            component_bytes("hello"),
            Some(&json!({"triggers": [{"webhook": "incoming"}]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let took = until(second, "C serves A's deploy", || {
        runs_version(&c, "hello", 1)
    })
    .await;
    println!("deploy on A served by C after {took:?}");
    until(second, "B serves A's deploy", || {
        runs_version(&b, "hello", 1)
    })
    .await;
    let run = c.invoke("hello", "hello", json!({"name": "Cy"})).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    // Its webhook is in C's trigger index too.
    until(second, "C knows A's webhook", || async {
        c.http
            .get(format!("{}/hooks/hello/incoming", c.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;

    // A second version on B, a rollback on C: every host follows each.
    let up = b
        .upload("hello", component_bytes("hello"), None, None)
        .await;
    assert_eq!(up.json["version"], 2, "{}", up.text);
    until(second, "A runs B's version 2", || {
        runs_version(&a, "hello", 2)
    })
    .await;
    until(second, "C runs B's version 2", || {
        runs_version(&c, "hello", 2)
    })
    .await;
    let back = c.post("/v1/plugins/hello/rollback", &json!({})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    until(second, "A rolled back", || runs_version(&a, "hello", 1)).await;
    until(second, "B rolled back", || runs_version(&b, "hello", 1)).await;

    // A trigger added through B's API is in A's index.
    let added = b
        .create(
            "/v1/triggers",
            &json!({"plugin": "hello", "trigger": {"event": "lead.created"}}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    until(second, "A matches B's new trigger", || async {
        let listed = a.get("/v1/triggers?plugin=hello").await;
        listed.text.contains("lead.created")
    })
    .await;

    // A delete on A: C stops serving it.
    let gone = a.delete("/v1/plugins/hello").await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    until(second, "C forgot the deleted plugin", || async {
        c.invoke("hello", "hello", json!({})).await.status == StatusCode::NOT_FOUND
    })
    .await;

    // The admin token rotated on A stops working on B and C.
    let old = a.token.clone();
    let rotated = a.post("/v1/token/rotate", &json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new = std::fs::read_to_string(a.dir.path().join("admin-token"))
        .expect("the new token is in A's token file")
        .trim()
        .to_owned();
    for host in [&b, &c] {
        until(second, "the old token refused", || async {
            let answer = host
                .send(
                    host.http
                        .get(format!("{}/v1/plugins", host.url))
                        .bearer_auth(&old),
                )
                .await;
            answer.status == StatusCode::UNAUTHORIZED
        })
        .await;
        let answer = host
            .send(
                host.http
                    .get(format!("{}/v1/plugins", host.url))
                    .bearer_auth(&new),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_started_on_one_host_works_on_another() {
    let a = on_postgres().await;
    let b = a.beside().await;
    let session = a.console_session().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http
        .get(format!("{}/plugins", b.url))
        .header("cookie", &session)
        .send()
        .await
        .expect("console page on B");
    assert_eq!(page.status(), StatusCode::OK, "B knows A's session");
    let html = page.text().await.expect("page");
    let csrf = junction_tests::host::csrf_of(&html);
    // A form posted to B with the token A's pages carry is accepted:
    // signing out on B ends the session on A.
    let out = http
        .post(format!("{}/logout", b.url))
        .header("cookie", &session)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .expect("sign out on B");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = http
        .get(format!("{}/plugins", a.url))
        .header("cookie", &session)
        .send()
        .await
        .expect("console page on A");
    assert_eq!(
        after.status(),
        StatusCode::SEE_OTHER,
        "signed out everywhere"
    );
    assert!(
        after
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("/login")),
        "sent to sign in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_rate_limit_is_one_allowance_over_every_host() {
    let a = TestHost::start_with({
        let store = fresh_database().await;
        move |config| {
            config.store = store;
            config.public_rate_per_minute = 10;
        }
    })
    .await;
    let b = a.beside().await;
    let c = a.beside().await;
    let mut limited = 0;
    let mut answered = 0;
    for n in 0..30 {
        let host = [&a, &b, &c][n % 3];
        let answer = host
            .http
            .get(format!("{}/hooks/none/none", host.url))
            .send()
            .await
            .expect("public route");
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
            assert!(answer.headers().contains_key("retry-after"));
        } else {
            answered += 1;
        }
    }
    assert_eq!(
        answered, 10,
        "ten a minute from this address, whichever host"
    );
    assert_eq!(limited, 20);
}

async fn ticks(host: &TestHost) -> Vec<Value> {
    let answer = host.get("/v1/executions?plugin=ticker").await;
    answer
        .json
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("executions: {}", answer.text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_fires_once_a_minute_over_three_hosts_and_catches_up_once() {
    use junction_host::events::Clock;
    // 2026-01-01T00:00:30Z, on a clock every host reads.
    let start = 1_767_225_630_000u64;
    let clock = Clock::manual(start);
    let mut a = TestHost::start_with({
        let store = fresh_database().await;
        let clock = clock.clone();
        move |config| {
            config.store = store;
            config.clock = clock;
        }
    })
    .await;
    let mut b = a.beside().await;
    let mut c = a.beside().await;
    let up = a
        .upload(
            "ticker",
            component_bytes("hello"),
            Some(&json!({"triggers": [{"schedule": "* * * * *"}]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    // Every host's scheduler has the schedule before the clock moves.
    for host in [&b, &c] {
        until(
            Duration::from_secs(5),
            "the schedule reached the host",
            || async {
                host.get("/v1/triggers?plugin=ticker")
                    .await
                    .text
                    .contains("next_fire_at_ms")
            },
        )
        .await;
    }

    // Three minutes, watched minute by minute: one run each.
    for minute in 1..=3 {
        clock.advance(Duration::from_secs(60));
        until(Duration::from_secs(20), "the minute's run", || async {
            ticks(&a).await.len() >= minute
        })
        .await;
        // A second run would come from another host's scheduler within
        // moments: give it the time, then count.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(ticks(&b).await.len(), minute, "minute {minute} fired once");
    }

    // Every host down for ten minutes, then all back: one catch-up run.
    for host in [&mut a, &mut b, &mut c] {
        host.stop().await;
    }
    clock.advance(Duration::from_secs(600));
    for host in [&mut a, &mut b, &mut c] {
        host.restart().await;
    }
    until(Duration::from_secs(20), "the catch-up run", || async {
        ticks(&c).await.len() >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let runs = ticks(&a).await;
    assert_eq!(runs.len(), 4, "one catch-up run over three hosts");
    let record = a
        .get(&format!(
            "/v1/executions/{}",
            runs[0]["id"].as_str().unwrap()
        ))
        .await;
    let payload = &record.json["output"]["payload"];
    assert_eq!(payload["missed"], 9, "{payload}");
    assert_eq!(payload["scheduled_for_ms"], start - 30_000 + 13 * 60_000);
    for host in [&mut a, &mut b, &mut c] {
        host.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_starting_together_on_a_new_database_issue_one_admin_token() {
    use junction_host::server::{Server, ServerConfig};
    use std::os::unix::fs::PermissionsExt;
    let store = fresh_database().await;
    let key = {
        use base64::Engine as _;
        use std::io::Read as _;
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut bytes))
            .expect("random bytes");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let mut dirs = Vec::new();
    let mut starts = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(junction_host::store::crypto::KEY_FILE);
        std::fs::write(&file, &key).expect("key file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let mut config = ServerConfig::new(dir.path(), "127.0.0.1:0".parse().expect("addr"));
        config.store = store.clone();
        starts.push(tokio::spawn(Server::start(config)));
        dirs.push(dir);
    }
    let mut servers = Vec::new();
    for start in starts {
        servers.push(start.await.expect("start task").expect("every host starts"));
    }
    let issued: Vec<String> = servers
        .iter()
        .filter_map(|s| s.issued_token().map(str::to_owned))
        .collect();
    assert_eq!(issued.len(), 1, "one host issues the token");
    let files = dirs
        .iter()
        .filter(|d| d.path().join("admin-token").exists())
        .count();
    assert_eq!(files, 1, "only the issuing host keeps a token file");
    let http = reqwest::Client::new();
    for server in &servers {
        let answer = http
            .get(format!("http://{}/v1/plugins", server.addr()))
            .bearer_auth(&issued[0])
            .send()
            .await
            .expect("request");
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "every host takes the token"
        );
    }
    for server in servers {
        server.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_users_connect_links_and_mcp_work_across_hosts() {
    use junction_tests::end_users::{ANA_TOKEN, accounts_on};
    let world = accounts_on(on_postgres().await).await;
    let a = &world.host;
    let b = a.beside().await;

    // A connect link issued on A is opened on B and completed on A.
    let issued = a
        .post(
            "/v1/connect-links",
            &json!({"end_user": "cyd", "service": "mailchimp-mock", "link_name": "second"}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let path = issued.json["url"]
        .as_str()
        .expect("url")
        .trim_start_matches(&a.url)
        .to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http
        .get(format!("{}{path}", b.url))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = junction_tests::host::set_cookie(&page, "junction_connect");
    let done = http
        .post(format!("{}{path}", a.url))
        .header("cookie", &cookie)
        .form(&[("token", "cyd-token-1")])
        .send()
        .await
        .expect("form");
    assert_eq!(done.status(), StatusCode::OK);
    let made = b.get("/v1/connections/second?end_user=cyd").await;
    assert_eq!(made.json["status"], "connected", "{}", made.text);
    let again = http
        .get(format!("{}{path}", b.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(again.status(), StatusCode::GONE, "used on A, refused on B");

    // Ana's key, issued on A, runs her tool call on B with her account.
    let key = a
        .post(
            "/v1/api-keys",
            &json!({"name": "ana", "end_user": "ana", "plugins": ["mailchimp-sync"]}),
        )
        .await;
    let key = key.json["key"].as_str().expect("key").to_owned();
    let lines = junction_tests::mcp::client(
        &b,
        &key,
        None,
        Some(("sync_mailchimp_campaign", json!({"campaign_id": "ca"}))),
    )
    .await;
    assert_eq!(lines[2]["is_error"], false, "{}", lines[2]);
    assert_eq!(
        lines[2]["structured"]["output"]["campaign"]["list_id"], "list-ana",
        "{}",
        lines[2]
    );
    assert!(junction_tests::end_users::saw_only(&world.ana, ANA_TOKEN));
    let runs = a.get("/v1/executions?end_user=ana").await;
    assert_eq!(
        runs.json.as_array().expect("list").len(),
        1,
        "{}",
        runs.text
    );
}
