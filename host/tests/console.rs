//! The web console in a real browser: headless Chromium, driven through
//! ChromeDriver, against `junction serve` (a child process) and a fake
//! OAuth provider with a consent page, both on 127.0.0.1. Screenshots of
//! the main pages are saved under `<target>/artifacts/console/`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::ServeChild;
use junction_tests::browser::Browser;
use junction_tests::oauth::{CLIENT_ID, CLIENT_SECRET, FakeProvider};
use junction_tests::plugins::{component, workspace_root};

fn admin_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin-token")).expect("admin token file")
}

/// Signs in through the form, starting from `path`.
async fn sign_in(browser: &mut Browser, token: &str, path: &str) {
    browser.open(path).await;
    browser.wait_for_path("/login").await;
    browser.fill("#token", token).await;
    browser.click("form button[type=submit]").await;
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_connects_a_service_and_runs_plugins_in_a_real_browser() {
    let provider = FakeProvider::start().await;
    provider.lock().consent_page = true;
    let data = tempfile::tempdir().expect("data dir");
    let server = ServeChild::start_with(
        data.path(),
        &["--allow-private-network", "--retry-base-ms", "50"],
    );
    let token = admin_token(data.path());
    let mut browser = Browser::start(&server.url).await;

    // Signing in: a wrong token is refused in words; the right one goes
    // on to the page first asked for.
    browser.open("/plugins").await;
    browser.wait_for_path("/login?next=%2Fplugins").await;
    browser.screenshot("01-sign-in").await;
    browser.fill("#token", "jct_not-the-token").await;
    browser.click("form button[type=submit]").await;
    let refused = browser
        .wait_for_text("#signin-error", "not the admin token")
        .await;
    assert!(refused.contains("admin-token"), "{refused}");
    browser.fill("#token", &token).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/plugins").await;
    assert!(browser.text(".empty").await.contains("No plugins yet"));

    browser.open("/").await;
    browser.wait_for_text("h1", "Overview").await;
    browser.screenshot("02-overview-empty").await;

    // Pick Your Service: the catalog, searchable, and the custom form.
    browser.open("/services").await;
    assert!(
        browser.has("#service-google").await,
        "catalog entries are listed"
    );
    browser.fill("#q", "hubspot").await;
    // The filter runs on input: wait for it to hide what does not match.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while browser
        .find("#service-google")
        .await
        .is_displayed()
        .await
        .expect("displayed")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the search hides what does not match"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    browser.open("/services").await;
    browser.screenshot("03-pick-your-service").await;
    browser.click("a[href='/services/new']").await;
    browser.wait_for_path("/services/new").await;

    // The server checks the form too: no access token URL is refused in words.
    let origin = provider.origin();
    browser.fill("#name", "fakeprov").await;
    browser.select("#auth_type", "oauth2").await;
    browser.fill("#base_url", &format!("{origin}/api")).await;
    browser.fill("#client_id", CLIENT_ID).await;
    browser.fill("#client_secret", CLIENT_SECRET).await;
    browser
        .fill("#authorize_url", &format!("{origin}/authorize"))
        .await;
    browser.fill("#scopes", "read write").await;
    browser
        .fill("#authorize_params", "access_type=offline")
        .await;
    browser.click("#custom-service button[type=submit]").await;
    let error = browser.wait_for_text("#flash", "Access token URL").await;
    assert!(error.contains("required"), "{error}");
    assert_eq!(
        browser
            .find("#client_secret")
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default(),
        "",
        "a secret is never sent back to the browser"
    );
    browser.screenshot("04-custom-service-error").await;
    browser.fill("#client_secret", CLIENT_SECRET).await;
    browser.fill("#token_url", &format!("{origin}/token")).await;
    browser.click("#custom-service button[type=submit]").await;
    browser
        .wait_for_path("/connections/new?service=fakeprov")
        .await;
    browser.wait_for_text("#flash", "fakeprov").await;

    // The link name is checked as it is typed.
    browser.fill("#link_name", "Bad Name").await;
    browser.wait_for_text("#link-check", "letter").await;
    browser.fill("#link_name", "crm").await;
    browser.wait_for_text("#link-check", "is free").await;
    assert_eq!(
        browser
            .find("#scopes")
            .await
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("read write"),
        "the service's default scopes are offered"
    );
    browser.screenshot("05-new-connection").await;

    // Create and Connect: approve at the provider, land back connected.
    browser.click("#create-and-connect").await;
    browser.wait_for_text("h1", "Fake Provider").await;
    assert_eq!(browser.text("#scopes").await, "read write");
    browser.click("#approve").await;
    browser.wait_for_path("/connections/crm").await;
    let status = browser
        .wait_for_text("#connection-status", "connected")
        .await;
    assert_eq!(status, "connected");
    let page = browser.text("main").await;
    assert!(page.contains("Granted scopes"), "{page}");
    assert!(page.contains(".connection(\"crm\")"), "the SDK snippet");
    assert!(
        page.contains("in 59 min") || page.contains("in 1 h"),
        "expiry: {page}"
    );
    browser.screenshot("06-connection-connected").await;
    let authorize = provider.lock().authorize_requests.last().cloned();
    let authorize = authorize.expect("the provider saw the authorize request");
    assert_eq!(
        authorize.get("access_type").map(String::as_str),
        Some("offline")
    );
    assert!(authorize.contains_key("code_challenge"), "PKCE is on");

    browser.click("#refresh-now").await;
    browser.wait_for_text("#flash", "refreshed").await;
    assert_eq!(provider.lock().refresh_requests, 1);

    // Denied at the provider: the browser is told why and finds its way back.
    browser.click("#connect-again").await;
    browser.wait_for_text("h1", "Fake Provider").await;
    browser.click("#deny").await;
    browser.wait_for_text("h1", "Not connected").await;
    assert!(browser.text("body").await.contains("access_denied"));
    browser.click("a[href='/connections/crm']").await;
    browser.wait_for_path("/connections/crm").await;
    browser.wait_for_text("#last-error", "access_denied").await;

    // Upload hello from the browser with its Cargo.toml as the manifest.
    browser.open("/plugins/new").await;
    browser.fill("#name", "hello").await;
    browser.attach("#component", &component("hello")).await;
    browser
        .attach(
            "#manifest_file",
            &workspace_root().join("plugins/hello/Cargo.toml"),
        )
        .await;
    browser.click("#upload button[type=submit]").await;
    browser.wait_for_path("/plugins/hello").await;
    browser
        .wait_for_text("#flash", "Version 1 of hello is active")
        .await;
    let triggers = browser.text("main").await;
    assert!(triggers.contains("event: hello"), "{triggers}");

    // Run now with a payload: the execution shows in place.
    browser.find("#execution-rows[data-live=open]").await;
    browser.fill("#kind", "greet").await;
    browser.fill("#payload", "{\"name\": \"Ada\"}").await;
    browser.click("#run-button").await;
    let output = browser.wait_for_text("#run-result #output", "Ada").await;
    assert!(output.contains("\"kind\": \"greet\""), "{output}");
    browser
        .wait_for_text("#run-result #logs", "hello received a `greet` event")
        .await;
    // The plugin's recent executions follow live.
    browser.wait_for_text("#execution-rows", "greet").await;
    browser.screenshot("07-plugin-run").await;

    // A payload that is not JSON is refused in words.
    browser.fill("#payload", "{\"name\": ").await;
    browser.click("#run-button").await;
    browser.wait_for_text("#run-error", "not valid JSON").await;

    // HTML from a plugin is shown as text, never run or parsed.
    let script = "<script>document.title='pwned'</script><b>bold</b>";
    browser.fill("#kind", script).await;
    browser.fill("#payload", "{}").await;
    browser.click("#run-button").await;
    let logs = browser.wait_for_text("#run-result #logs", "<script>").await;
    assert!(
        logs.contains(script),
        "the log line is shown as written: {logs}"
    );
    browser.remember().await;
    let source = browser.seen.last().cloned().unwrap_or_default();
    assert!(
        !source.contains("<script>document.title"),
        "escaped in the page"
    );
    assert!(
        source.contains("&lt;script&gt;document.title"),
        "escaped in the page"
    );
    assert!(
        !browser.has("#run-result b").await,
        "no element was made from it"
    );
    assert_ne!(browser.client.title().await.expect("title"), "pwned");
    let record = browser.find("#run-result .execution a").await;
    let href = record.attr("href").await.expect("href").expect("a link");
    browser.open(&href).await;
    browser.wait_for_text("#logs", "<b>bold</b>").await;
    assert!(!browser.has("#logs b").await);

    // Something that is not a component is refused in words, and nothing
    // is stored; a second version can be rolled back from its page.
    browser.open("/plugins/new").await;
    browser.fill("#name", "hello").await;
    browser
        .attach(
            "#component",
            &workspace_root().join("plugins/hello/Cargo.toml"),
        )
        .await;
    browser.click("#upload button[type=submit]").await;
    let refused = browser.wait_for_text("#flash", "component").await;
    assert!(refused.to_lowercase().contains("not"), "{refused}");
    browser.attach("#component", &component("hello")).await;
    browser.click("#upload button[type=submit]").await;
    browser
        .wait_for_text("#flash", "Version 2 of hello is active")
        .await;
    browser
        .click("form[action='/plugins/hello/rollback'] button")
        .await;
    browser
        .wait_for_text("#flash", "Version 1 of hello is active again")
        .await;

    // A plugin granted the connection calls its API; the call is listed
    // with its status and connection, and a key in the query is redacted.
    browser.open("/plugins/new").await;
    browser.fill("#name", "probe").await;
    browser.attach("#component", &component("probe")).await;
    browser.click("#upload details summary").await;
    browser
        .fill(
            "#manifest_text",
            "[package.metadata.junction]\nconnections = [\"crm\"]",
        )
        .await;
    browser.click("#upload button[type=submit]").await;
    browser.wait_for_path("/plugins/probe").await;
    browser.wait_for_text("main", "granted").await;
    browser.fill("#kind", "call").await;
    browser
        .fill(
            "#payload",
            r#"{"url": "/me", "connection": "crm", "query": [["api_key", "leak-me-not"]]}"#,
        )
        .await;
    browser.click("#run-button").await;
    let calls = browser.wait_for_text("#run-result #calls", "/api/me").await;
    assert!(
        calls.contains("GET") && calls.contains("200") && calls.contains("crm"),
        "{calls}"
    );
    assert!(
        !calls.contains("leak-me-not"),
        "the query key is redacted: {calls}"
    );
    browser.screenshot("08-plugin-call").await;
    let record = browser.find("#run-result .execution a").await;
    let href = record.attr("href").await.expect("href").expect("a link");
    browser.open(&href).await;
    browser.wait_for_text("#calls", "crm").await;
    browser.screenshot("08b-execution-page").await;
    browser.open("/plugins/probe").await;

    // A failing execution shows its error.
    browser.fill("#kind", "fail").await;
    browser.click("#run-button").await;
    browser
        .wait_for_text("#run-result #failure-message", "probe was asked to fail")
        .await;
    browser.screenshot("09-failed-run").await;

    // The execution list: filtered, and live.
    browser.open("/executions?status=failed").await;
    let failed = browser.text("#execution-rows").await;
    assert!(
        failed.contains("returned an error") && !failed.contains("greet"),
        "{failed}"
    );
    browser.open("/executions?plugin=hello").await;
    // The stream is open before the run it should show.
    browser.find("#execution-rows[data-live=open]").await;
    assert_eq!(browser.text("#live").await, "live");
    let api = http();
    let invoked = api
        .post(format!("{}/v1/plugins/hello/invoke", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "from-api", "payload": {}}))
        .send()
        .await
        .expect("invoke");
    assert!(invoked.status().is_success());
    browser.wait_for_text("#execution-rows", "from-api").await;
    browser.screenshot("10-executions-live").await;

    // Dead letters, and retrying one.
    let trigger = api
        .post(format!("{}/v1/triggers", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"plugin": "probe", "trigger": {"event": "fail", "retries": 0}}))
        .send()
        .await
        .expect("add trigger");
    assert!(trigger.status().is_success(), "{:?}", trigger.text().await);
    let sent = api
        .post(format!("{}/v1/events", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "fail", "payload": {}}))
        .send()
        .await
        .expect("send event");
    assert_eq!(sent.status(), 202);
    let mut dead = false;
    for _ in 0..200 {
        browser.open("/deliveries").await;
        if browser.has("form[action$='/retry'] button").await {
            dead = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dead, "the delivery died and is listed");
    assert!(
        browser
            .text("main")
            .await
            .contains("probe was asked to fail")
    );
    browser.screenshot("11-dead-letters").await;
    browser.click("form[action$='/retry'] button").await;
    browser
        .wait_for_text("#flash", "queued for another attempt")
        .await;

    // Connection buttons: revoke, then delete after confirming.
    browser.open("/connections/crm").await;
    let used = browser.text(".facts").await;
    assert!(used.contains("probe"), "used by probe: {used}");
    browser.click("#revoke").await;
    browser.wait_for_text("#flash", "revoked").await;
    assert_eq!(browser.text("#connection-status").await, "disconnected");
    browser.click("details.danger summary").await;
    browser.click("#confirm-delete").await;
    browser.wait_for_path("/connections").await;
    browser.wait_for_text("#flash", "deleted").await;
    assert!(browser.text("main").await.contains("No connections yet"));

    // A form post without the session's CSRF token is refused, as is one
    // another site makes with it.
    let session = browser
        .cookie("junction_session")
        .await
        .expect("session cookie");
    let cookie = format!("junction_session={session}");
    let forged = api
        .post(format!("{}/services/fakeprov/delete", server.url))
        .header("cookie", &cookie)
        .form(&[("confirm", "yes")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    assert!(
        forged
            .text()
            .await
            .expect("body")
            .contains("security token")
    );
    let csrf = browser
        .find("form.signout input[name=_csrf]")
        .await
        .prop("value")
        .await
        .expect("value")
        .expect("token");
    let cross = api
        .post(format!("{}/services/fakeprov/delete", server.url))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(cross.status(), 403);
    let upload_without_token = api
        .post(format!("{}/plugins/new", server.url))
        .header("cookie", &cookie)
        .multipart(reqwest::multipart::Form::new().text("name", "sneaky").part(
            "component",
            reqwest::multipart::Part::bytes(vec![0, 97, 115, 109]),
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(upload_without_token.status(), 403);
    let service = api
        .get(format!("{}/v1/services/fakeprov", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(
        service.status(),
        200,
        "nothing was deleted by the forged posts"
    );
    let plugins: serde_json::Value = api
        .get(format!("{}/v1/plugins", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        plugins.as_array().map(Vec::len),
        Some(2),
        "no sneaky plugin"
    );

    // Phone-sized, for the screenshot.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    browser.open("/plugins/hello").await;
    browser.screenshot("12-plugin-phone").await;
    browser
        .client
        .set_window_size(1280, 900)
        .await
        .expect("resize");

    // Signing out ends the session.
    browser.click("form.signout button").await;
    browser.wait_for_path("/login").await;
    browser.open("/plugins").await;
    browser.wait_for_path("/login?next=%2Fplugins").await;
    let after = api
        .get(format!("{}/plugins", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(after.status(), 303, "the old cookie no longer works");

    // No page ever showed a secret.
    let issued = provider.lock().access_tokens.clone();
    for page in &browser.seen {
        assert!(!page.contains(CLIENT_SECRET), "the client secret was shown");
        assert!(!page.contains(&token), "the admin token was shown");
        for access in &issued {
            assert!(!page.contains(access.as_str()), "an access token was shown");
        }
    }
    browser.close().await;
    println!(
        "screenshots in {}",
        junction_tests::browser::artifacts_dir().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_sign_in_brings_you_back() {
    let data = tempfile::tempdir().expect("data dir");
    let server = ServeChild::start_with(data.path(), &["--console-session-secs", "1"]);
    let token = admin_token(data.path());
    let mut browser = Browser::start(&server.url).await;
    sign_in(&mut browser, &token, "/executions").await;
    browser.wait_for_path("/executions").await;
    // The session lasts one second without a request.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    browser.open("/deliveries").await;
    browser
        .wait_for_path("/login?next=%2Fdeliveries&expired=1")
        .await;
    browser
        .wait_for_text("main", "Your session has ended")
        .await;
    browser.fill("#token", &token).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/deliveries").await;

    // Pages that do not exist say so in HTML to a browser, in JSON to a client.
    browser.open("/no/such/page").await;
    browser
        .wait_for_text("#error-message", "no page at this address")
        .await;
    let api = http()
        .get(format!("{}/no/such/page", server.url))
        .send()
        .await
        .expect("get");
    assert_eq!(api.status(), 404);
    assert!(api.text().await.expect("body").contains("\"not-found\""));
    browser.close().await;
}
