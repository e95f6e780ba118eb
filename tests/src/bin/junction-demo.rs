//! The README's first command: the seed's MailChimp → Zoho CRM sync, end to
//! end on this machine. It starts mock MailChimp and Zoho CRM servers on
//! 127.0.0.1 (there is no internet here, and no real account is needed),
//! stores the two connections in `./junction-data` (the embedded default),
//! builds `plugins/mailchimp-sync` and runs a `campaign.sync` event twice —
//! the second run is incremental — printing each execution record.

use std::path::PathBuf;

use anyhow::{Context, bail};
use junction_host::cli::{DEFAULT_DATA_DIR, RunOptions, run_once};
use junction_host::store::{AuthType, Credentials, Placement, Secret, Store};
use junction_tests::harness::{ConnectionCredentials, store_connection};
use junction_tests::mailchimp::{Member, MockMailchimp};
use junction_tests::plugins::{plugin_target_dir, workspace_root};
use junction_tests::zoho::MockCrm;

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
    println!(
        "mock MailChimp on {}, mock Zoho CRM on {}",
        mailchimp.addr, crm.addr
    );

    {
        let store =
            Store::open(&data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
        put_connection(
            &store,
            "mailchimp",
            "mailchimp-demo",
            &mailchimp.base_url(),
            Placement::bearer(),
            DEMO_TOKEN_MAILCHIMP,
            &[],
        )?;
        put_connection(
            &store,
            "zohocrm",
            "zohocrm-demo",
            "{api_domain}",
            Placement::Header {
                name: "Authorization".into(),
                template: "Zoho-oauthtoken {token}".into(),
            },
            DEMO_TOKEN_CRM,
            &[("api_domain", &crm.api_domain())],
        )?;
        // Start the demo from a full sync each time.
        store.kv_delete("mailchimp-sync", "cursor/demo-list")?;
    }
    println!(
        "connections `mailchimp` and `zohocrm` stored (encrypted) in {}",
        data_dir.display()
    );

    let event_file = data_dir.join("demo-event.json");
    std::fs::write(
        &event_file,
        r#"{"kind": "campaign.sync", "payload": {"campaign_id": "demo-campaign", "page_size": 20}}"#,
    )?;
    let options = RunOptions {
        data_dir: data_dir.clone(),
        grants: vec![],
        allow_hosts: vec![],
        manifest: None,
        target_dir: Some(plugin_target_dir()),
    };
    let plugin = workspace_root().join("plugins/mailchimp-sync");
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
        println!(
            "\n=== {run}: junction run plugins/mailchimp-sync --event {} ===",
            event_file.display()
        );
        let record = run_once(&plugin, event, &options).await?;
        println!("{}", serde_json::to_string_pretty(&record)?);
        if !record.is_ok() {
            bail!("the sync failed");
        }
    }
    println!("\nZoho CRM now holds {} leads.", crm.lead_count());
    Ok(())
}

fn put_connection(
    store: &Store,
    link: &str,
    service_name: &str,
    base_url: &str,
    placement: Placement,
    token: &str,
    metadata: &[(&str, &str)],
) -> anyhow::Result<()> {
    if let Some(existing) = store.connection(link)? {
        if existing.service != service_name {
            bail!(
                "`{link}` in this data directory is a real connection (service `{}`); run the demo with JUNCTION_DATA_DIR set to another folder",
                existing.service
            );
        }
        store.delete_connection(link)?;
    }
    if store.service(service_name)?.is_some() {
        store.delete_service(service_name)?;
    }
    let auth = ConnectionCredentials {
        auth_type: AuthType::Bearer,
        placement,
        credentials: Credentials::Bearer {
            token: Secret::new(token.into()),
        },
    };
    store_connection(store, link, service_name, base_url, auth, metadata)?;
    Ok(())
}
