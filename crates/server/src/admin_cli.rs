//! `switchboard admin …`: manage organizations, extensions, carrier
//! connections and business numbers from the command line, directly on the
//! database the servers use (the data directory's SQLite file, or
//! `--database-url`), safe while servers run: the database serializes the
//! writers.

use crate::auth;
use crate::config::{DEFAULT_LISTEN, DatabaseUrl, PublicUrl, database_path, secret_key_path};
use crate::secrets::Sealer;
use crate::service::carriers::{self, ConnectionDraft};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use switchboard_domain::{DisplayName, ExtensionNumber, OrgSlug, Password, Role};
use switchboard_store::{Extension, ExtensionUpdate, NewExtension, NewPassword, Org, Store};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The server's data directory.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// The database, as `serve --database-url`: sqlite://PATH or
    /// postgres://… [default: SQLite in the data directory].
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<DatabaseUrl>,
    /// The server's public URL, which the webhook URLs shown are built
    /// from (as `serve --public-url`) [default: http://127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<PublicUrl>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an organization.
    CreateOrg {
        /// Short name used at sign-in, e.g. "acme".
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
    /// List organizations.
    ListOrgs,
    /// Create an extension. Without --password a random one is made and printed.
    CreateExtension {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
        #[arg(long)]
        name: String,
        #[arg(long, env = "SWITCHBOARD_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Make it an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List the extensions of an organization.
    ListExtensions {
        #[arg(long)]
        org: String,
    },
    /// Disable an extension and sign it out everywhere.
    DisableExtension {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
    },
    /// Enable a disabled extension.
    EnableExtension {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
    },
    /// Set a new password. Without --password a random one is made and printed.
    ResetPassword {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
        #[arg(long, env = "SWITCHBOARD_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Make an extension an administrator.
    GrantAdmin {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
    },
    /// Add a carrier connection (the secret is read from
    /// SWITCHBOARD_CARRIER_SECRET or --secret, and stored sealed).
    AddCarrier {
        #[arg(long)]
        org: String,
        /// twilio, telnyx or simulator.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        /// Twilio's account SID.
        #[arg(long)]
        account_sid: Option<String>,
        /// Twilio's API key SID (SK…), to call the API with an API key;
        /// its secret is read from SWITCHBOARD_CARRIER_API_KEY_SECRET or
        /// --api-key-secret.
        #[arg(long)]
        api_key_sid: Option<String>,
        #[arg(
            long,
            env = "SWITCHBOARD_CARRIER_API_KEY_SECRET",
            hide_env_values = true
        )]
        api_key_secret: Option<String>,
        /// Telnyx's public key (base64), to check its webhooks.
        #[arg(long)]
        public_key: Option<String>,
        /// The carrier's API base URL, when not the carrier's own.
        #[arg(long)]
        base_url: Option<String>,
        /// Twilio's auth token or Telnyx's API key.
        #[arg(long, env = "SWITCHBOARD_CARRIER_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// List the carrier connections of an organization.
    ListCarriers {
        #[arg(long)]
        org: String,
    },
    /// Add a business number (E.164, e.g. +14155550100, or as dialled in
    /// the organization's default country).
    AddNumber {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
        /// The carrier connection (by name) that serves it.
        #[arg(long)]
        carrier: Option<String>,
        /// The number does not send or receive texts.
        #[arg(long)]
        no_sms: bool,
    },
    /// List the business numbers of an organization.
    ListNumbers {
        #[arg(long)]
        org: String,
    },
    /// Let an extension text from a business number.
    AssignNumber {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
        #[arg(long)]
        extension: String,
    },
    /// Take a business number away from an extension.
    UnassignNumber {
        #[arg(long)]
        org: String,
        #[arg(long)]
        number: String,
        #[arg(long)]
        extension: String,
    },
}

fn password_or_random(given: Option<String>) -> anyhow::Result<(Password, bool)> {
    match given {
        Some(p) => Ok((Password::parse_new(&p)?, false)),
        None => {
            let p: String = auth::new_token()?.chars().take(16).collect();
            Ok((Password::parse_new(&p)?, true))
        }
    }
}

async fn org(store: &dyn Store, slug: &str) -> anyhow::Result<Org> {
    let slug = OrgSlug::parse(slug)?;
    store
        .org_by_slug(&slug)
        .await?
        .with_context(|| format!("no organization named {slug}"))
}

async fn extension(store: &dyn Store, org: &Org, number: &str) -> anyhow::Result<Extension> {
    let number = ExtensionNumber::parse(number)?;
    Ok(store
        .extension_for_sign_in(org.id, &number)
        .await?
        .with_context(|| format!("no extension {number} in {}", org.slug))?
        .0)
}

fn now() -> switchboard_domain::Timestamp {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    if !args.data_dir.exists() {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    }
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| DatabaseUrl::Sqlite(database_path(&args.data_dir)));
    let store = crate::open_store(&url, Default::default(), None).await?;
    let store = store.as_ref();
    let public_url = args
        .public_url
        .unwrap_or_else(|| PublicUrl::of_address(DEFAULT_LISTEN));
    match args.command {
        AdminCommand::CreateOrg { slug, name } => {
            let org = store
                .create_org(&OrgSlug::parse(&slug)?, &DisplayName::parse(&name)?)
                .await?;
            println!("created organization {} ({})", org.slug, org.name);
        }
        AdminCommand::ListOrgs => {
            for org in store.list_orgs().await? {
                println!("{}\t{}", org.slug, org.name);
            }
        }
        AdminCommand::CreateExtension {
            org: slug,
            number,
            name,
            password,
            admin,
        } => {
            let org = org(store, &slug).await?;
            let (password, generated) = password_or_random(password)?;
            let hash = auth::passwords::hash_password(&password)?;
            let created = store
                .create_extensions(
                    org.id,
                    vec![NewExtension {
                        number: ExtensionNumber::parse(&number)?,
                        name: DisplayName::parse(&name)?,
                        role: if admin { Role::Admin } else { Role::Member },
                        password_hash: hash,
                    }],
                    now(),
                )
                .await?;
            for e in created {
                println!(
                    "created extension {} ({}) in {}",
                    e.number, e.name, org.slug
                );
            }
            if generated {
                println!("password: {}", password.expose());
            }
        }
        AdminCommand::ListExtensions { org: slug } => {
            let org = org(store, &slug).await?;
            println!("number\tname\trole\tstatus");
            for e in store.list_extensions(org.id).await? {
                let status = if e.disabled { "disabled" } else { "active" };
                println!("{}\t{}\t{}\t{status}", e.number, e.name, e.role.as_str());
            }
        }
        AdminCommand::DisableExtension { org: slug, number } => {
            set_disabled(store, &slug, &number, true).await?;
        }
        AdminCommand::EnableExtension { org: slug, number } => {
            set_disabled(store, &slug, &number, false).await?;
        }
        AdminCommand::ResetPassword {
            org: slug,
            number,
            password,
        } => {
            let org = org(store, &slug).await?;
            let ext = extension(store, &org, &number).await?;
            let (password, generated) = password_or_random(password)?;
            store
                .set_password_hash(NewPassword {
                    org: org.id,
                    extension: ext.id,
                    hash: auth::passwords::hash_password(&password)?,
                    keep: None,
                })
                .await?;
            println!(
                "password of {} reset; its sessions are signed out",
                ext.number
            );
            if generated {
                println!("password: {}", password.expose());
            }
        }
        AdminCommand::GrantAdmin { org: slug, number } => {
            let org = org(store, &slug).await?;
            let ext = extension(store, &org, &number).await?;
            store
                .update_extension(
                    org.id,
                    ext.id,
                    ExtensionUpdate {
                        role: Some(Role::Admin),
                        ..ExtensionUpdate::default()
                    },
                )
                .await?;
            println!("{} is now an administrator", ext.number);
        }
        AdminCommand::AddCarrier {
            org: slug,
            kind,
            name,
            account_sid,
            api_key_sid,
            api_key_secret,
            public_key,
            base_url,
            secret,
        } => {
            let org = org(store, &slug).await?;
            let sealer = Sealer::from_key_file(&secret_key_path(&args.data_dir))?;
            let draft = ConnectionDraft {
                kind: &kind,
                name: &name,
                account_sid: account_sid.as_deref(),
                api_key_sid: api_key_sid.as_deref(),
                secret: secret.as_deref(),
                api_key_secret: api_key_secret.as_deref(),
                public_key: public_key.as_deref(),
                base_url: base_url.as_deref(),
            };
            let added = carriers::add_connection(store, &sealer, org.id, draft)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "added {} connection {} to {}",
                added.kind.as_str(),
                added.name,
                org.slug
            );
            for url in carriers::webhook_urls(&public_url, added.kind, added.id) {
                println!("webhook: {url}");
            }
        }
        AdminCommand::ListCarriers { org: slug } => {
            let org = org(store, &slug).await?;
            println!("name\tkind\tsettings\twebhook URLs");
            for c in store.connections(org.id).await? {
                let urls = carriers::webhook_urls(&public_url, c.kind, c.id);
                println!(
                    "{}\t{}\t{}\t{}",
                    c.name,
                    c.kind.as_str(),
                    c.settings,
                    urls.join(" ")
                );
            }
        }
        AdminCommand::AddNumber {
            org: slug,
            number,
            carrier,
            no_sms,
        } => {
            let org = org(store, &slug).await?;
            let connection = match carrier {
                Some(name) => Some(
                    store
                        .connections(org.id)
                        .await?
                        .into_iter()
                        .find(|c| c.name == name)
                        .with_context(|| format!("no carrier connection named {name:?}"))?
                        .id,
                ),
                None => None,
            };
            let added = carriers::add_number(
                store,
                org.id,
                org.default_country,
                &number,
                !no_sms,
                connection,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("added {} to {}", added.number, org.slug);
        }
        AdminCommand::ListNumbers { org: slug } => {
            let org = org(store, &slug).await?;
            println!("number\tsms");
            for n in store.numbers(org.id).await? {
                println!("{}\t{}", n.number, if n.sms_enabled { "yes" } else { "no" });
            }
        }
        AdminCommand::AssignNumber {
            org: slug,
            number,
            extension: ext,
        } => set_assignment(store, &slug, &number, &ext, true).await?,
        AdminCommand::UnassignNumber {
            org: slug,
            number,
            extension: ext,
        } => set_assignment(store, &slug, &number, &ext, false).await?,
    }
    Ok(())
}

async fn business_number(
    store: &dyn Store,
    org: &Org,
    number: &str,
) -> anyhow::Result<switchboard_store::BusinessNumber> {
    let number = carriers::parse_number(number, org.default_country)?;
    store
        .numbers(org.id)
        .await?
        .into_iter()
        .find(|n| n.number == number)
        .with_context(|| format!("{number} is not a business number of {}", org.slug))
}

async fn set_assignment(
    store: &dyn Store,
    slug: &str,
    number: &str,
    ext: &str,
    assigned: bool,
) -> anyhow::Result<()> {
    let org = org(store, slug).await?;
    let n = business_number(store, &org, number).await?;
    let ext = extension(store, &org, ext).await?;
    carriers::set_assignment(store, org.id, n.id, ext.id, assigned)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if assigned {
        println!("{} may text from {}", ext.number, n.number);
    } else {
        println!("{} no longer texts from {}", ext.number, n.number);
    }
    Ok(())
}

async fn set_disabled(
    store: &dyn Store,
    slug: &str,
    number: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let org = org(store, slug).await?;
    let ext = extension(store, &org, number).await?;
    store
        .update_extension(
            org.id,
            ext.id,
            ExtensionUpdate {
                disabled: Some(disabled),
                ..ExtensionUpdate::default()
            },
        )
        .await?;
    println!(
        "{} is {}",
        ext.number,
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}
