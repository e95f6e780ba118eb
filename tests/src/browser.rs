//! A real browser for the console tests: Debian's headless Chromium driven
//! through ChromeDriver (WebDriver, with `fantoccini`). Each [`Browser`]
//! starts its own ChromeDriver on a free port of 127.0.0.1 and a Chromium
//! with a fresh profile and no background networking, remembers every page
//! it saw (so a test can check no secret was ever shown), and saves
//! screenshots as test artefacts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long a wait for an element or a page lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{} is missing: the browser tests need Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`; ./scripts/test.sh installs them), or {env} pointing at it",
        path.display()
    );
    path
}

/// Where screenshots go: `$JUNCTION_ARTIFACTS_DIR`, or `artifacts/console`
/// under the cargo target directory.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("JUNCTION_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| crate::plugins::workspace_root().join("target"))
                .join("artifacts")
                .join("console")
        });
    std::fs::create_dir_all(&dir).expect("create the artefacts directory");
    dir
}

/// A headless Chromium and the ChromeDriver that drives it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    base: String,
    /// The source of every page looked at, for secret scans.
    pub seen: Vec<String>,
    shots: PathBuf,
}

impl Browser {
    /// Starts ChromeDriver and a 1280×900 Chromium, with `base` (the
    /// console's origin) prefixed to relative paths.
    pub async fn start(base: &str) -> Browser {
        let chromium = program("JUNCTION_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("JUNCTION_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(format!("{url}/status")).await
                && response.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "chromedriver did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile directory");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("open a Chromium session");
        Browser {
            client,
            driver,
            _profile: profile,
            base: base.trim_end_matches('/').to_owned(),
            seen: Vec::new(),
            shots: artifacts_dir(),
        }
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Opens a page and remembers its source.
    pub async fn open(&mut self, path: &str) {
        let url = self.absolute(path);
        self.client.goto(&url).await.expect("open the page");
        self.remember().await;
    }

    /// Records the current page's source.
    pub async fn remember(&mut self) {
        if let Ok(source) = self.client.source().await {
            self.seen.push(source);
        }
    }

    /// The current URL's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the current path starts with `prefix`.
    pub async fn wait_for_path(&mut self, prefix: &str) {
        let started = Instant::now();
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                self.remember().await;
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "still at {path}, waiting for {prefix}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for an element.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element `{css}`: {e}"))
    }

    /// Whether an element is on the page now.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// An element's text.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// Waits until an element's text contains `wanted`; returns the text.
    pub async fn wait_for_text(&mut self, css: &str, wanted: &str) -> String {
        let started = Instant::now();
        loop {
            let mut last = None;
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if text.contains(wanted) {
                    self.remember().await;
                    return text;
                }
                last = Some(text);
            }
            if started.elapsed() > PATIENCE {
                let path = self.path().await;
                panic!("`{css}` never said `{wanted}` on {path}; it said {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Replaces a field's value by typing.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear the field");
        if !text.is_empty() {
            field.send_keys(text).await.expect("type into the field");
        }
    }

    /// Picks an option of a select by its value.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .expect("pick the option");
    }

    /// Chooses a file for a file input.
    pub async fn attach(&self, css: &str, file: &Path) {
        let path = file.canonicalize().expect("the file exists");
        self.find(css)
            .await
            .send_keys(path.to_str().expect("utf-8 path"))
            .await
            .expect("choose the file");
    }

    /// Clicks an element.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Saves a screenshot as `<name>.png` in the artefacts directory.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("save the screenshot");
        path
    }

    /// The session cookie's value, for requests made outside the browser.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Ends the session and stops ChromeDriver (and with it Chromium).
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test still stops its driver; Chromium exits with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
