//! The demo organization: five extensions, so that a new user is chatting
//! within a minute of starting the server.

use crate::auth;
use switchboard_domain::{DisplayName, ExtensionNumber, OrgSlug, Password, Role, Timestamp};
use switchboard_store::{NewExtension, Store};

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
    let password = match password {
        Some(p) => p.to_owned(),
        None => auth::new_token()?.chars().take(12).collect(),
    };
    let parsed =
        Password::parse_new(&password).map_err(|e| anyhow::anyhow!("demo password: {e}"))?;
    let slug = OrgSlug::parse(DEMO_ORG)?;
    let org = store
        .create_org(&slug, &DisplayName::parse("Demo Company")?)
        .await?;
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
    store.create_extensions(org.id, new, now).await?;
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
    text
}
