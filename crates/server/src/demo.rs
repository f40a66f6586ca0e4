//! The demo organization: five extensions, so that a new user is chatting
//! within a minute of starting the server, and two business numbers on the
//! built-in phone simulator, so that texting a customer is as quick.

use crate::auth;
use switchboard_domain::phone::E164;
use switchboard_domain::{
    CarrierKind, DisplayName, ExtensionNumber, OrgSlug, Password, Role, Timestamp,
};
use switchboard_store::{NewConnection, NewExtension, NewNumber, Store, StoreError};

/// The demo's business numbers and the extensions that text from each:
/// the sales line is shared, the support line is Dan's, and Erin has none
/// (to show what an extension without a number sees).
pub const DEMO_NUMBERS: [(&str, &[&str]); 2] = [
    ("+14155550100", &["101", "102", "103"]),
    ("+14155550101", &["104"]),
];

pub const DEMO_ORG: &str = "demo";
pub const DEMO_EXTENSIONS: [(&str, &str, Role); 5] = [
    ("101", "Alice Archer", Role::Admin),
    ("102", "Bob Baker", Role::Member),
    ("103", "Carol Chen", Role::Member),
    ("104", "Dan Diaz", Role::Member),
    ("105", "Erin Evans", Role::Member),
];

/// What was created, for the welcome text.
pub struct Seeded {
    pub password: String,
}

/// Creates the demo organization when the database has no organization.
pub async fn seed_if_empty(
    store: &dyn Store,
    passwords: &auth::PasswordWorkers,
    password: Option<&str>,
    now: Timestamp,
) -> anyhow::Result<Option<Seeded>> {
    if !store.list_orgs().await?.is_empty() {
        return Ok(None);
    }
    seed(store, passwords, password, now).await
}

/// Creates the demo organization, unless another node sharing the database
/// created it first: nodes started together on an empty database all find
/// it empty, and the unique organization name lets one of them seed.
async fn seed(
    store: &dyn Store,
    passwords: &auth::PasswordWorkers,
    password: Option<&str>,
    now: Timestamp,
) -> anyhow::Result<Option<Seeded>> {
    let password = match password {
        Some(p) => p.to_owned(),
        None => auth::new_token()?.chars().take(12).collect(),
    };
    let parsed =
        Password::parse_new(&password).map_err(|e| anyhow::anyhow!("demo password: {e}"))?;
    let slug = OrgSlug::parse(DEMO_ORG)?;
    let org = match store
        .create_org(&slug, &DisplayName::parse("Demo Company")?)
        .await
    {
        Ok(org) => org,
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let hash = passwords
        .hash(parsed)
        .await
        .map_err(|e| anyhow::anyhow!("cannot hash the demo password: {e}"))?;
    let mut new = Vec::new();
    for (number, name, role) in DEMO_EXTENSIONS {
        new.push(NewExtension {
            number: ExtensionNumber::parse(number)?,
            name: DisplayName::parse(name)?,
            role,
            password_hash: hash.clone(),
        });
    }
    let extensions = store.create_extensions(org.id, new, now).await?;
    let simulator = store
        .add_connection(NewConnection {
            org: org.id,
            kind: CarrierKind::Simulator,
            name: "Phone simulator".into(),
            settings: "{}".into(),
            sealed_secret: Vec::new(),
        })
        .await?;
    for (number, holders) in DEMO_NUMBERS {
        let added = store
            .add_number(NewNumber {
                org: org.id,
                number: E164::parse_strict(number)?,
                sms_enabled: true,
                connection: Some(simulator.id),
            })
            .await?;
        for holder in holders {
            if let Some(ext) = extensions.iter().find(|e| e.number == *holder) {
                store.assign_number(org.id, added.id, ext.id).await?;
            }
        }
    }
    Ok(Some(Seeded { password }))
}

pub fn welcome(url: &str, seeded: &Seeded) -> String {
    let mut text = format!(
        "\nDemo organization created. Open {url} and sign in with\n  organization: {DEMO_ORG}\n  password:     {}\n  extension:    ",
        seeded.password
    );
    let list: Vec<String> = DEMO_EXTENSIONS
        .iter()
        .map(|(n, name, role)| {
            if *role == Role::Admin {
                format!("{n} ({name}, administrator)")
            } else {
                format!("{n} ({name})")
            }
        })
        .collect();
    text.push_str(&list.join(", "));
    text.push_str("\nSign in as two extensions in two browser windows and chat.\n");
    text.push_str(&format!(
        "Text a customer: + New -> SMS as 101, and answer as the customer on {url}/simulator\n"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_store::{Directory, SqliteOptions, SqliteStore};

    fn store(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(SqliteOptions::new(dir.path().join("db.sqlite")))
            .expect("the store opens")
    }

    #[tokio::test]
    async fn an_empty_database_is_seeded_once() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store(&dir);
        let passwords = auth::PasswordWorkers::start(1).expect("password workers");
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let first = seed_if_empty(&store, &passwords, Some("demo-password-1"), now)
            .await
            .expect("the first start seeds");
        assert_eq!(
            first.map(|s| s.password).as_deref(),
            Some("demo-password-1")
        );
        let again = seed_if_empty(&store, &passwords, Some("demo-password-1"), now)
            .await
            .expect("a second start succeeds");
        assert!(again.is_none());
        let orgs = store.list_orgs().await.expect("orgs");
        assert_eq!(orgs.len(), 1);
        let extensions = store.list_extensions(orgs[0].id).await.expect("extensions");
        assert_eq!(extensions.len(), DEMO_EXTENSIONS.len());
    }

    #[tokio::test]
    async fn a_node_that_finds_the_demo_created_meanwhile_starts_without_seeding() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store(&dir);
        let passwords = auth::PasswordWorkers::start(1).expect("password workers");
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        // Another node created the organization after this one found the
        // database empty.
        let other = store
            .create_org(
                &OrgSlug::parse(DEMO_ORG).expect("slug"),
                &DisplayName::parse("Demo Company").expect("name"),
            )
            .await
            .expect("the other node's organization");
        let seeded = seed(&store, &passwords, Some("demo-password-1"), now)
            .await
            .expect("the start succeeds");
        assert!(seeded.is_none());
        assert_eq!(store.list_orgs().await.expect("orgs").len(), 1);
        assert!(
            store
                .list_extensions(other.id)
                .await
                .expect("extensions")
                .is_empty()
        );
    }
}
