//! Two end users of an embedding app, each with their own MailChimp
//! account (two mock MailChimp servers, each accepting only its own
//! token), and the organisation's Zoho CRM that both sync into: a host
//! with the services, the three connections and `mailchimp-sync` deployed.

use serde_json::json;

use crate::host::TestHost;
use crate::mailchimp::{Member, MockMailchimp};
use crate::plugins::{component_bytes, example_manifest_json};
use crate::zoho::MockCrm;

/// Ana's MailChimp token.
pub const ANA_TOKEN: &str = "mc-token-of-ana-41c2";
/// Ben's MailChimp token.
pub const BEN_TOKEN: &str = "mc-token-of-ben-93d7";
/// The organisation's CRM token.
pub const CRM_TOKEN: &str = "crm-token-of-the-org-5a0e";

/// The host and the accounts behind it.
pub struct Accounts {
    pub host: TestHost,
    /// Ana's MailChimp: campaign `ca` on list `list-ana`, 3 members.
    pub ana: MockMailchimp,
    /// Ben's MailChimp: campaign `cb` on list `list-ben`, 2 members.
    pub ben: MockMailchimp,
    pub crm: MockCrm,
}

fn members(owner: &str, count: usize) -> Vec<Member> {
    (0..count)
        .map(|i| {
            Member::new(
                &format!("{owner}-contact{i}@example.com"),
                &format!("{owner}{i}"),
                "Example",
                &format!("2026-11-01T10:00:{i:02}+00:00"),
            )
        })
        .collect()
}

/// A host on `host` with Ana's and Ben's MailChimp connections (link name
/// `mailchimp`, one each) and the organisation's `zohocrm`, and
/// `mailchimp-sync` deployed with its example manifest.
pub async fn accounts_on(host: TestHost) -> Accounts {
    let ana = MockMailchimp::start(ANA_TOKEN, "ana-api-key-us1").await;
    let ben = MockMailchimp::start(BEN_TOKEN, "ben-api-key-us1").await;
    ana.add_campaign("ca", "list-ana", members("ana", 3));
    ben.add_campaign("cb", "list-ben", members("ben", 2));
    let crm = MockCrm::start(CRM_TOKEN).await;
    // Each account lives at its own origin, as MailChimp's data centres do.
    let created = host
        .create(
            "/v1/services",
            &json!({"name": "mailchimp-mock", "auth_type": "bearer", "base_url": "{api_domain}/3.0"}),
        )
        .await;
    assert!(created.status.is_success(), "{}", created.text);
    host.create(
        "/v1/services",
        &json!({ "name": "zoho-mock", "auth_type": "bearer", "base_url": "{api_domain}/crm/v7",
                 "placement": { "in": "header", "name": "Authorization", "template": "Zoho-oauthtoken {token}" } }),
    )
    .await;
    for (user, token, account) in [("ana", ANA_TOKEN, &ana), ("ben", BEN_TOKEN, &ben)] {
        let created = host
            .create(
                "/v1/connections",
                &json!({ "link_name": "mailchimp", "service": "mailchimp-mock", "end_user": user,
                         "credentials": { "type": "bearer", "token": token },
                         "metadata": { "api_domain": format!("http://{}", account.addr) } }),
            )
            .await;
        assert!(created.status.is_success(), "{}", created.text);
        assert_eq!(created.json["end_user"], user);
    }
    host.create(
        "/v1/connections",
        &json!({ "link_name": "zohocrm", "service": "zoho-mock",
                 "credentials": { "type": "bearer", "token": CRM_TOKEN },
                 "metadata": { "api_domain": crm.api_domain() } }),
    )
    .await;
    let up = host
        .upload(
            "mailchimp-sync",
            component_bytes("mailchimp-sync"),
            Some(&example_manifest_json("mailchimp-sync")),
            None,
        )
        .await;
    assert!(up.status.is_success(), "{}", up.text);
    Accounts {
        host,
        ana,
        ben,
        crm,
    }
}

/// Whether every request `account` received carried `token` as its bearer.
pub fn saw_only(account: &MockMailchimp, token: &str) -> bool {
    let bearer = format!("Bearer {token}");
    account
        .journal
        .all()
        .iter()
        .all(|r| r.header("authorization") == Some(bearer.as_str()))
}

/// [`accounts_on`] a new host on the embedded store.
pub async fn accounts() -> Accounts {
    accounts_on(TestHost::start().await).await
}
