//! Failed sign-ins counted in the database ([`SignInLimits`]), one row per
//! account or client address (`sign_in_limits`).
//!
//! An attempt inserts or locks both of its rows in one statement, decides on
//! what it locked, and counts; a concurrent attempt on any node that needs
//! one of those rows waits until this one has committed, so it sees the
//! count. Every transaction here locks at most an account's row and then an
//! address's (keys compare bytewise and `account:` sorts first), so they
//! cannot deadlock, and the sweep skips rows that are locked.
//!
//! These writes do not go through the writer: in its group commit the rows
//! would stay locked until the whole batch committed, and two nodes whose
//! batches took the same keys in opposite orders (guesses spread over both)
//! would deadlock and fail every write of both batches. Each is a short
//! transaction of its own that does not wait for the flush to disk: a
//! database crash may forget the last counts, which forgives a few guesses,
//! as a restart forgives them on a single node.

use super::PgStore;
use crate::{AttemptLimits, AttemptTicket, Result, SignInLimits, StoreError};
use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::net::IpAddr;
use std::time::Duration;
use switchboard_domain::Timestamp;

fn account_key(account: &str) -> String {
    format!("account:{account}")
}

fn address_key(address: IpAddr) -> String {
    format!("address:{address}")
}

/// A transaction whose commit does not wait for the flush to disk.
async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Gives one attempt back to `key`'s window if it is still the one that
/// counted it.
async fn give_back(
    tx: &mut Transaction<'static, Postgres>,
    key: &str,
    window: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE sign_in_limits SET failures = GREATEST(failures - 1, 0)
         WHERE key = $1 AND started = $2",
    )
    .bind(key)
    .bind(window.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl SignInLimits for PgStore {
    fn keeps_sign_in_limits(&self) -> bool {
        true
    }

    async fn attempt(
        &self,
        account: &str,
        address: IpAddr,
        now: Timestamp,
        limits: AttemptLimits,
    ) -> Result<std::result::Result<AttemptTicket, u64>> {
        let keys = [
            (account_key(account), limits.per_account),
            (address_key(address), limits.per_address),
        ];
        let names: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
        let mut tx = begin(self.pool()).await?;
        // A row that is missing starts a window at `now`; one that exists is
        // locked by the no-op update, and RETURNING shows its newest count.
        let rows = sqlx::query(
            "INSERT INTO sign_in_limits (key, started, failures)
             SELECT key, $2, 0 FROM unnest($1::text[]) AS k(key) ORDER BY key COLLATE \"C\"
             ON CONFLICT (key) DO UPDATE SET failures = sign_in_limits.failures
             RETURNING key, started, failures",
        )
        .bind(&names)
        .bind(now.0)
        .fetch_all(&mut *tx)
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get("key")?;
            let started: i64 = row.try_get("started")?;
            let failures: i32 = row.try_get("failures")?;
            found.push((
                key,
                Timestamp(started),
                u32::try_from(failures).unwrap_or(0),
            ));
        }
        let mut windows = Vec::with_capacity(keys.len());
        for (key, limit) in &keys {
            let &(_, started, failures) = found
                .iter()
                .find(|(found, _, _)| found == key)
                .ok_or_else(|| StoreError::Backend("a sign-in count was not returned".into()))?;
            let elapsed = now.since(started);
            if elapsed < limits.window && failures >= *limit {
                // A refused attempt counts nothing: the rows it inserted go too.
                tx.rollback().await?;
                return Ok(Err((limits.window - elapsed).as_secs().max(1)));
            }
            windows.push(if elapsed >= limits.window {
                (now, 1)
            } else {
                (started, failures.saturating_add(1))
            });
        }
        let starts: Vec<i64> = windows.iter().map(|(started, _)| started.0).collect();
        let counts: Vec<i32> = windows
            .iter()
            .map(|(_, failures)| i32::try_from(*failures).unwrap_or(i32::MAX))
            .collect();
        sqlx::query(
            "UPDATE sign_in_limits AS l SET started = v.started, failures = v.failures
             FROM unnest($1::text[], $2::bigint[], $3::integer[]) AS v(key, started, failures)
             WHERE l.key = v.key",
        )
        .bind(&names)
        .bind(&starts)
        .bind(&counts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(AttemptTicket {
            account: account.to_owned(),
            address,
            account_window: windows[0].0,
            address_window: windows[1].0,
        }))
    }

    async fn succeeded(&self, ticket: AttemptTicket) -> Result<()> {
        let mut tx = begin(self.pool()).await?;
        sqlx::query("DELETE FROM sign_in_limits WHERE key = $1")
            .bind(account_key(&ticket.account))
            .execute(&mut *tx)
            .await?;
        give_back(&mut tx, &address_key(ticket.address), ticket.address_window).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn undecided(&self, ticket: AttemptTicket) -> Result<()> {
        let mut tx = begin(self.pool()).await?;
        give_back(
            &mut tx,
            &account_key(&ticket.account),
            ticket.account_window,
        )
        .await?;
        give_back(&mut tx, &address_key(ticket.address), ticket.address_window).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forget_expired_sign_ins(&self, now: Timestamp, window: Duration) -> Result<u64> {
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        // Rows an attempt holds are left for the next sweep rather than
        // waited for.
        let forgotten = sqlx::query(
            "DELETE FROM sign_in_limits WHERE key IN (
                 SELECT key FROM sign_in_limits WHERE started <= $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(now.0.saturating_sub(window))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(forgotten)
    }
}
