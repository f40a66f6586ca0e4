//! Makes sure the generator's users exist and signs them in, through the bulk
//! path an operator would use: the administrator's CSV import, in chunks.
//! Users already present from an earlier run are kept, so runs can repeat.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, Result};
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
