//! The README's first command: the seed's MailChimp → Zoho CRM sync, end to
//! end on this machine, through the real server. It starts mock MailChimp and
//! Zoho CRM servers on 127.0.0.1 (there is no internet here, and no real
//! account is needed), starts `junction serve` on the embedded default
//! (`./junction-data`, issuing the admin token on first start), creates the
//! two connections over the API, deploys `plugins/mailchimp-sync` the way
//! `junction deploy` does, invokes a `campaign.sync` event twice — the second
//! run is incremental — then lets MailChimp's own webhook (a campaign was
//! sent) fire the plugin through the event queue, and lists the executions,
//! printing what the CLI prints.
//!
//! Run from a terminal, it then keeps the server up with the web console
//! and a demo OAuth provider (with a consent page) defined as the service
//! `demo-oauth`, so a person can sign in, connect a service and run a
//! plugin in the browser; Ctrl-C stops it. `JUNCTION_DEMO_CONSOLE=0` (or
//! `1`) skips (or forces) that part.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, bail};
use junction_host::cli::DEFAULT_DATA_DIR;
use junction_host::cli::client::{Client, ClientError, ServerArgs};
use junction_host::cli::remote::{self, DeployArgs};
use junction_host::server::{Server, ServerConfig};
use junction_tests::mailchimp::{Member, MockMailchimp};
use junction_tests::oauth::{CLIENT_ID, CLIENT_SECRET, FakeProvider};
use junction_tests::plugins::{plugin_target_dir, workspace_root};
use junction_tests::zoho::MockCrm;
use reqwest::Method;
use serde_json::json;

const DEMO_TOKEN_MAILCHIMP: &str = "demo-mailchimp-token";
const DEMO_TOKEN_CRM: &str = "1000.demo-crm-token";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data_dir = PathBuf::from(
        std::env::var("JUNCTION_DATA_DIR").unwrap_or_else(|_| DEFAULT_DATA_DIR.into()),
    );
    let mailchimp = MockMailchimp::start(DEMO_TOKEN_MAILCHIMP, "unused-us6").await;
    let crm = MockCrm::start(DEMO_TOKEN_CRM).await;
    let members: Vec<Member> = (0..42)
        .map(|i| {
            Member::new(
                &format!("reader{i}@example.com"),
                &format!("Reader{i}"),
                "Demo",
                &format!("2026-11-01T08:00:{i:02}+00:00"),
            )
        })
        .collect();
    mailchimp.add_campaign("demo-campaign", "demo-list", members);
    let newsletter: Vec<Member> = (0..5)
        .map(|i| {
            Member::new(
                &format!("subscriber{i}@example.com"),
                &format!("Subscriber{i}"),
                "Demo",
                "2026-11-20T09:00:00+00:00",
            )
        })
        .collect();
    mailchimp.add_campaign("demo-newsletter", "demo-news-list", newsletter);
    println!(
        "mock MailChimp on {}, mock Zoho CRM on {}",
        mailchimp.addr, crm.addr
    );

    // The usual address when it is free, so the console is where the
    // README says; any free port otherwise.
    let listen = match std::net::TcpListener::bind("127.0.0.1:7070") {
        Ok(probe) => {
            drop(probe);
            "127.0.0.1:7070"
        }
        Err(_) => "127.0.0.1:0",
    };
    let mut config = ServerConfig::new(&data_dir, listen.parse()?);
    // The mock providers listen on 127.0.0.1.
    config.allow_private_network = true;
    let server = Server::start(config).await.with_context(|| {
        format!(
            "starting the server on {} (if `junction serve` is running there, stop it or set JUNCTION_DATA_DIR to another folder)",
            data_dir.display()
        )
    })?;
    if let Some(token) = server.issued_token() {
        println!(
            "first start: admin token issued and written to {}/admin-token ({}…)",
            data_dir.display(),
            &token[..8]
        );
    }
    let url = format!("http://{}", server.addr());
    println!(
        "junction serve listening on {url} (data in {})",
        data_dir.display()
    );
    let args = ServerArgs {
        url,
        token: None,
        data_dir: data_dir.clone(),
        store: Default::default(),
        json: false,
    };
    let result = run(&args, &mailchimp, &crm).await;
    if result.is_ok() {
        println!("\nZoho CRM now holds {} leads.", crm.lead_count());
    }
    let console = match std::env::var("JUNCTION_DEMO_CONSOLE").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::io::stdin().is_terminal(),
    };
    let result = match result {
        Ok(()) if console => open_console(&args, &data_dir).await,
        other => other,
    };
    server.shutdown().await?;
    result?;
    println!(
        "\nNext: `./target/debug/junction serve` (the console is at http://127.0.0.1:7070/), then in another terminal `./target/debug/junction deploy plugins/hello`, `./target/debug/junction events tail` and, in a third, `./target/debug/junction event send hello`."
    );
    Ok(())
}

/// Keeps the server up for the web console until Ctrl-C, with a demo OAuth
/// provider to connect to and the hello component built to upload.
async fn open_console(args: &ServerArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let provider = FakeProvider::start().await;
    provider.lock().consent_page = true;
    let client = Client::new(args)?;
    match client
        .get::<serde_json::Value>(&["v1", "services", "demo-oauth"])
        .await
    {
        Ok(_) => {
            let _: serde_json::Value = client
                .send_json(
                    Method::PUT,
                    &["v1", "services", "demo-oauth"],
                    &demo_oauth(&provider),
                )
                .await?;
        }
        Err(ClientError::Api { status: 404, .. }) => {
            let _: serde_json::Value = client
                .send_json(Method::POST, &["v1", "services"], &demo_oauth(&provider))
                .await?;
        }
        Err(other) => return Err(other.into()),
    }
    let hello = junction_tests::plugins::component("hello");
    let token_file = data_dir.join("admin-token");
    println!(
        "\n=== The web console: {}/ ===\n\
         Sign in with the admin token: `cat {}`.\n\
         * Connections › New connection › service `demo-oauth` (a local OAuth provider): give a link name, press Create and Connect, approve.\n\
         * Plugins › mailchimp-sync › Run now with kind `campaign.sync` and payload {{\"campaign_id\": \"demo-campaign\"}}: see its calls to MailChimp and Zoho CRM.\n\
         * Plugins › Upload a plugin: name `hello`, component {}, manifest {}.\n\
         Press Ctrl-C to stop.",
        args.url,
        token_file.display(),
        hello.display(),
        workspace_root().join("plugins/hello/Cargo.toml").display(),
    );
    tokio::signal::ctrl_c().await?;
    println!("\nstopping");
    Ok(())
}

/// The demo provider as a custom OAuth 2.0 service.
fn demo_oauth(provider: &FakeProvider) -> serde_json::Value {
    let origin = provider.origin();
    json!({
        "name": "demo-oauth",
        "auth_type": "oauth2",
        "base_url": format!("{origin}/api"),
        "oauth": {
            "client_id": CLIENT_ID,
            "authorize_url": format!("{origin}/authorize"),
            "token_url": format!("{origin}/token"),
            "revoke_url": format!("{origin}/revoke"),
            "scopes": ["profile"],
        },
        "client_secret": CLIENT_SECRET,
    })
}

async fn run(args: &ServerArgs, mailchimp: &MockMailchimp, crm: &MockCrm) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    put_connection(
        &client,
        "mailchimp",
        json!({"name": "mailchimp-demo", "auth_type": "bearer", "base_url": mailchimp.base_url()}),
        DEMO_TOKEN_MAILCHIMP,
        json!({}),
    )
    .await?;
    put_connection(
        &client,
        "zohocrm",
        json!({
            "name": "zohocrm-demo", "auth_type": "bearer", "base_url": "{api_domain}/crm/v7",
            "placement": {"in": "header", "name": "Authorization", "template": "Zoho-oauthtoken {token}"},
        }),
        DEMO_TOKEN_CRM,
        json!({"api_domain": crm.api_domain()}),
    )
    .await?;
    println!(
        "connections `mailchimp` and `zohocrm` created over the API (secrets encrypted at rest)"
    );

    // Start from a full sync: a fresh deploy has an empty kv namespace.
    match client.delete(&["v1", "plugins", "mailchimp-sync"]).await {
        Ok(()) | Err(ClientError::Api { status: 404, .. }) => {}
        Err(other) => return Err(other.into()),
    }
    println!("\n=== junction deploy plugins/mailchimp-sync ===");
    remote::deploy(DeployArgs {
        plugin: workspace_root().join("plugins/mailchimp-sync"),
        name: None,
        grants: vec![],
        manifest: None,
        target_dir: Some(plugin_target_dir()),
        server: args.clone(),
    })
    .await?;

    let event_file = args.data_dir.join("demo-event.json");
    std::fs::write(
        &event_file,
        r#"{"kind": "campaign.sync", "payload": {"campaign_id": "demo-campaign", "page_size": 20}}"#,
    )?;
    let event = event_file.to_str().context("event path")?;
    for (run, change) in [
        ("first run (full sync)", false),
        ("second run (incremental)", true),
    ] {
        if change {
            mailchimp.touch_member(
                "demo-list",
                "reader7@example.com",
                "Renamed",
                "2026-11-27T12:00:00+00:00",
            );
        }
        println!("\n=== {run}: junction invoke mailchimp-sync --event {event} ===");
        if remote::invoke("mailchimp-sync", Some(event), args)
            .await
            .is_err()
        {
            bail!("the sync failed");
        }
    }
    webhook(&client, args).await?;
    println!("\n=== junction executions --plugin mailchimp-sync ===");
    remote::executions(Some("mailchimp-sync"), None, 5, args).await?;
    Ok(())
}

/// Replaces the demo's connection `link` (and its service) with a fresh one;
/// refuses to touch a real connection of the same name.
async fn put_connection(
    client: &Client,
    link: &str,
    service: serde_json::Value,
    token: &str,
    metadata: serde_json::Value,
) -> anyhow::Result<()> {
    let service_name = service["name"].as_str().context("service name")?.to_owned();
    match client
        .get::<serde_json::Value>(&["v1", "connections", link])
        .await
    {
        Ok(existing) if existing["service"] != service_name.as_str() => bail!(
            "`{link}` in this data directory is a real connection (service {}); run the demo with JUNCTION_DATA_DIR set to another folder",
            existing["service"]
        ),
        Ok(_) => client.delete(&["v1", "connections", link]).await?,
        Err(ClientError::Api { status: 404, .. }) => {}
        Err(other) => return Err(other.into()),
    }
    match client.delete(&["v1", "services", &service_name]).await {
        Ok(()) | Err(ClientError::Api { status: 404, .. }) => {}
        Err(other) => return Err(other.into()),
    }
    let _: serde_json::Value = client
        .send_json(Method::POST, &["v1", "services"], &service)
        .await?;
    let connection = json!({
        "link_name": link,
        "service": service_name,
        "credentials": {"type": "bearer", "token": token},
        "metadata": metadata,
    });
    let _: serde_json::Value = client
        .send_json(Method::POST, &["v1", "connections"], &connection)
        .await?;
    Ok(())
}

/// MailChimp calls the plugin's webhook (form-encoded, the secret in the
/// URL) when a campaign goes out; the host queues a `webhook.mailchimp`
/// event, the dispatcher runs the plugin, and the campaign is synced.
async fn webhook(client: &Client, args: &ServerArgs) -> anyhow::Result<()> {
    let secret = junction_host::cli::events::random_hook_secret();
    let _: serde_json::Value = client
        .send_json(
            Method::PUT,
            &["v1", "hooks", "mailchimp-sync", "mailchimp", "secret"],
            &json!({ "secret": secret }),
        )
        .await?;
    println!(
        "\n=== MailChimp's webhook: POST /hooks/mailchimp-sync/mailchimp/<secret> (campaign sent) ==="
    );
    let response = reqwest::Client::new()
        .post(format!("{}/hooks/mailchimp-sync/mailchimp/{secret}", args.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("type=campaign&fired_at=2026-11-28+09%3A00%3A00&data%5Bid%5D=demo-newsletter&data%5Bstatus%5D=sent&data%5Blist_id%5D=demo-news-list")
        .send()
        .await?;
    let status = response.status();
    let accepted: serde_json::Value = response.json().await?;
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("the webhook was refused ({status}): {accepted}");
    }
    let id = accepted["id"].as_str().context("event id")?.to_owned();
    println!(
        "{status}: event {id}, delivered to {} plugin",
        accepted["matched"]
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let event: serde_json::Value = client.get(&["v1", "events", &id]).await?;
        let state = event["deliveries"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if matches!(state.as_str(), "succeeded" | "dead" | "cancelled") {
            println!("\n=== junction event show {id} ===");
            junction_host::cli::events::event(junction_host::cli::events::EventCommand::Show {
                id: id.clone(),
                server: args.clone(),
            })
            .await?;
            if state != "succeeded" {
                bail!("the webhook's delivery ended {state}");
            }
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("the webhook's delivery did not finish in a minute ({state})");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
