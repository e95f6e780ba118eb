//! Plugins in Rust, Python and JavaScript through the same server: each
//! language's hello uploads with the manifest from its own project file,
//! runs, and shows its language in the API and the console; a Python or
//! JavaScript component that cannot start inside its memory limit is
//! refused at upload, in words that say what to change; the console's
//! upload form takes a `pyproject.toml` or `package.json` as the manifest.

use junction_host::Language;
use junction_tests::host::{TestHost, csrf_of};
use junction_tests::plugins::{self, in_language};
use reqwest::StatusCode;
use serde_json::json;

/// A console page's HTML, signed in with `cookie`.
async fn console_page(host: &TestHost, cookie: &str, path: &str) -> String {
    host.http
        .get(format!("{}{path}", host.url))
        .header("cookie", cookie)
        .send()
        .await
        .expect("console page")
        .text()
        .await
        .expect("html")
}

async fn hello_uploads_runs_and_shows_its_language(language: Language) {
    let host = TestHost::start().await;
    let package = in_language("hello", language);
    let manifest = serde_json::to_value(plugins::example_manifest(&package)).expect("manifest");
    let uploaded = host
        .upload(
            &package,
            plugins::component_bytes(&package),
            Some(&manifest),
            None,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text);

    let answer = host.invoke(&package, "hello", json!({"name": "Ada"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let record = &answer.json;
    assert_eq!(record["status"], "ok", "{record}");
    assert_eq!(record["output"]["payload"]["name"], "Ada", "{record}");
    assert_eq!(
        record["logs"][0]["message"], "hello received a `hello` event",
        "{record}"
    );

    let detail = host.get(&format!("/v1/plugins/{package}")).await;
    let wire_name = serde_json::to_value(language).expect("language");
    assert_eq!(detail.json["language"], wire_name, "{}", detail.text);
    assert_eq!(
        detail.json["versions"][0]["language"], wire_name,
        "{}",
        detail.text
    );
    // The manifest came from the project file of its language.
    assert_eq!(
        detail.json["triggers"],
        json!([{"event": "hello"}]),
        "{}",
        detail.text
    );

    let cookie = host.console_session().await;
    for page in ["/plugins".to_owned(), format!("/plugins/{package}")] {
        let html = console_page(&host, &cookie, &page).await;
        assert!(
            html.contains(&format!("<td>{}</td>", language.display_name()))
                || html.contains(&format!("{} · v1", language.display_name())),
            "{page} does not show {language}: {html}"
        );
    }
}

junction_tests::each_language!(hello_uploads_runs_and_shows_its_language);

#[tokio::test]
async fn an_interpreter_that_cannot_start_in_its_memory_limit_is_refused_at_upload() {
    let host = TestHost::start().await;
    for language in [Language::Python, Language::JavaScript] {
        let package = in_language("hello", language);
        let manifest = json!({"limits": {"memory-mb": 4}});
        let uploaded = host
            .upload(
                &package,
                plugins::component_bytes(&package),
                Some(&manifest),
                None,
            )
            .await;
        assert_eq!(
            uploaded.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{language}: {}",
            uploaded.text
        );
        let message = uploaded.json["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("more than its memory limit of 4 MiB")
                && message.contains("`memory-mb`"),
            "{language}: {message}"
        );
        let listed = host.get(&format!("/v1/plugins/{package}")).await;
        assert_eq!(
            listed.status,
            StatusCode::NOT_FOUND,
            "{language}: nothing kept"
        );
    }
    // The Rust hello starts in far less.
    let uploaded = host
        .upload(
            "hello",
            plugins::component_bytes("hello"),
            Some(&json!({"limits": {"memory-mb": 4}})),
            None,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text);
}

#[tokio::test]
async fn the_console_takes_a_pyproject_or_package_json_as_the_manifest() {
    let host = TestHost::start().await;
    let cookie = host.console_session().await;
    for (language, project_file) in [
        (Language::Python, "pyproject.toml"),
        (Language::JavaScript, "package.json"),
    ] {
        let package = in_language("hello", language);
        let form_page = console_page(&host, &cookie, "/plugins/new").await;
        let manifest = std::fs::read(
            plugins::workspace_root()
                .join("plugins")
                .join(&package)
                .join(project_file),
        )
        .expect("project file");
        let form = reqwest::multipart::Form::new()
            .text("_csrf", csrf_of(&form_page))
            .text("name", package.clone())
            .part(
                "component",
                reqwest::multipart::Part::bytes(plugins::component_bytes(&package))
                    .file_name("plugin.wasm"),
            )
            .part(
                "manifest_file",
                reqwest::multipart::Part::bytes(manifest).file_name(project_file),
            );
        let uploaded = host
            .http
            .post(format!("{}/plugins/new", host.url))
            .header("cookie", &cookie)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        assert_eq!(uploaded.status(), StatusCode::OK, "{language}");
        assert!(
            uploaded
                .url()
                .path()
                .ends_with(&format!("/plugins/{package}")),
            "{language}: landed on {}",
            uploaded.url()
        );
        let detail = host.get(&format!("/v1/plugins/{package}")).await;
        assert_eq!(
            detail.json["triggers"],
            json!([{"event": "hello"}]),
            "{language}: {}",
            detail.text
        );
        assert_eq!(
            detail.json["language"],
            serde_json::to_value(language).expect("language"),
            "{language}"
        );
    }
}
