//! Makes sure the generator's users exist and signs them in, through the bulk
//! path an operator would use: the administrator's CSV import, in chunks.
//! Users already present from an earlier run are kept, so runs can repeat.
//!
//! W5 also needs a carrier's side: a Twilio connection whose auth token the
//! generator knows (it signs the webhooks), a business number it serves, and
//! that number assigned to exactly the workload's users. These go through
//! the administrator's API as well, and are reused when already there.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::api::{Api, Session};

/// Where the users live and how to create them.
#[derive(Debug, Clone)]
pub struct Directory {
    pub organization: String,
    pub admin_extension: String,
    pub admin_password: String,
    /// User 0 is this extension number, user 1 the next, and so on.
    pub first_extension: u32,
    pub user_password: String,
    /// Rows per import request.
    pub chunk: usize,
    /// Sign-ins in flight at once.
    pub concurrency: usize,
}

/// How provisioning went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Provisioned {
    pub users: usize,
    pub imported: u64,
    pub import_seconds: f64,
    pub sign_in_seconds: f64,
}

impl Directory {
    fn number(&self, user: usize) -> String {
        (u64::from(self.first_extension) + user as u64).to_string()
    }

    /// Signs in as the administrator.
    pub async fn admin(&self, api: &Api) -> Result<Session> {
        api.sign_in(
            &self.organization,
            &self.admin_extension,
            &self.admin_password,
        )
        .await
        .context("signing in as the administrator (check --admin-extension and --admin-password)")
    }

    /// Ensures users `0..count` exist, then signs each in once; sessions come back
    /// in user order.
    pub async fn users(&self, api: &Api, count: usize) -> Result<(Vec<Session>, Provisioned)> {
        let started = Instant::now();
        let admin = self.admin(api).await?;
        let existing: HashSet<String> = api
            .extension_numbers(&admin)
            .await?
            .into_iter()
            .map(|(number, _)| number)
            .collect();
        let missing: Vec<String> = (0..count)
            .map(|user| self.number(user))
            .filter(|number| !existing.contains(number))
            .collect();
        let mut imported = 0;
        for rows in missing.chunks(self.chunk.max(1)) {
            imported += api.import_extensions(&admin, self.csv(rows)).await?;
            eprintln!("  imported {imported}/{} extensions", missing.len());
        }
        let import_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let sessions: Vec<Session> = stream::iter(0..count)
            .map(|user| {
                let number = self.number(user);
                async move {
                    api.sign_in(&self.organization, &number, &self.user_password)
                        .await
                        .with_context(|| format!("signing in extension {number} (was it imported with another --user-password?)"))
                }
            })
            .buffered(self.concurrency.max(1))
            .try_collect()
            .await?;
        Ok((
            sessions,
            Provisioned {
                users: count,
                imported,
                import_seconds,
                sign_in_seconds: started.elapsed().as_secs_f64(),
            },
        ))
    }

    fn csv(&self, numbers: &[String]) -> String {
        let mut csv = String::from("number,name,password,role\n");
        for number in numbers {
            csv.push_str(&format!(
                "{},{},{},member\n",
                csv_field(number),
                csv_field(&format!("Load {number}")),
                csv_field(&self.user_password)
            ));
        }
        csv
    }
}

/// The carrier connection and business number W5 sets up.
#[derive(Debug, Clone)]
pub struct CarrierSetup {
    /// The connection's name, by which a later run finds it again.
    pub name: String,
    pub account_sid: String,
    /// The auth token the webhooks are signed with. A connection found by
    /// name is taken to have it; its webhooks are refused (403) otherwise.
    pub auth_token: String,
    /// The business number, E.164.
    pub business_number: String,
}

/// How W5's carrier side was set up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SmsProvisioned {
    pub connection_id: i64,
    /// Whether the connection was made by this run (else found by name).
    pub connection_created: bool,
    pub business_number: String,
    pub number_id: i64,
    /// The URL the webhooks are signed for, as the server names it.
    pub webhook_url: String,
    /// Extensions given the number by this run.
    pub assigned: usize,
    /// Extensions of earlier runs that had the number and lost it.
    pub unassigned: usize,
    pub seconds: f64,
}

impl CarrierSetup {
    /// Makes sure the connection and the number exist and that exactly
    /// `extensions` text from the number.
    pub async fn provision(
        &self,
        api: &Api,
        admin: &Session,
        extensions: &[Session],
    ) -> Result<SmsProvisioned> {
        let started = Instant::now();
        let existing = api.carriers(admin).await.context(
            "this server has no carrier administration API (GET /api/v1/admin/carriers)",
        )?;
        let (connection, connection_created) = match existing
            .into_iter()
            .find(|c| c.name == self.name)
        {
            Some(found) if found.kind != "twilio" => bail!(
                "the carrier connection {:?} is a {} connection; choose another --carrier-name",
                self.name,
                found.kind
            ),
            Some(found) => (found, false),
            None => (
                api.add_twilio_connection(admin, &self.name, &self.account_sid, &self.auth_token)
                    .await?,
                true,
            ),
        };
        let numbers = api.business_numbers(admin).await?;
        let number = match numbers
            .into_iter()
            .find(|n| n.number == self.business_number)
        {
            Some(found) if found.connection_id == Some(connection.id) && found.sms_enabled => found,
            Some(found) => api.serve_number_by(admin, found.id, connection.id).await?,
            None => {
                api.add_business_number(admin, &self.business_number, connection.id)
                    .await?
            }
        };
        let wanted: HashSet<i64> = extensions.iter().map(|s| s.extension_id).collect();
        let mut assigned = 0;
        for &extension in &wanted {
            if !number.extension_ids.contains(&extension) {
                api.assign_number(admin, number.id, extension, true).await?;
                assigned += 1;
            }
        }
        let mut unassigned = 0;
        for &extension in &number.extension_ids {
            if !wanted.contains(&extension) {
                api.assign_number(admin, number.id, extension, false)
                    .await?;
                unassigned += 1;
            }
        }
        let path = format!("/webhooks/twilio/{}/messages", connection.id);
        let webhook_url = connection
            .webhook_urls
            .iter()
            .find(|url| url.ends_with(&path))
            .cloned()
            .with_context(|| {
                format!(
                    "the server names no {path} webhook URL for connection {}",
                    connection.id
                )
            })?;
        Ok(SmsProvisioned {
            connection_id: connection.id,
            connection_created,
            business_number: number.number,
            number_id: number.id,
            webhook_url,
            assigned,
            unassigned,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_import_rows() {
        let directory = Directory {
            organization: "demo".into(),
            admin_extension: "101".into(),
            admin_password: "pw".into(),
            first_extension: 2000,
            user_password: "a,\"b".into(),
            chunk: 500,
            concurrency: 4,
        };
        assert_eq!(directory.number(3), "2003");
        assert_eq!(
            directory.csv(&["2000".into()]),
            "number,name,password,role\n2000,Load 2000,\"a,\"\"b\",member\n"
        );
    }
}
