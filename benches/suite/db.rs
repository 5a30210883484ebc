//! Databases created for one measurement and dropped afterwards.

use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

/// A PostgreSQL database of its own for one measurement. Drop it with [`TempPg::drop_db`].
#[derive(Debug)]
pub(crate) struct TempPg {
    admin: PgConnectOptions,
    name: String,
    /// Connection options for the new database.
    pub(crate) options: PgConnectOptions,
    /// Its URL, for the `backfill` binary.
    pub(crate) url: String,
}

impl TempPg {
    /// Creates the empty database `backfill_suite_{tag}_{pid}` on the server of `admin_url`.
    pub(crate) async fn create(admin_url: &str, tag: &str) -> anyhow::Result<Self> {
        let name = format!("backfill_suite_{tag}_{}", std::process::id());
        let admin = PgConnectOptions::from_str(admin_url)
            .with_context(|| format!("DATABASE_URL {admin_url:?} is not a PostgreSQL URL"))?;
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .context("connecting to PostgreSQL (DATABASE_URL)")?;
        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        conn.close().await?;
        Ok(Self {
            options: admin.clone().database(&name),
            url: with_database(admin_url, &name),
            admin,
            name,
        })
    }

    /// Drops the database (closing whatever is still connected to it).
    pub(crate) async fn drop_db(self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        conn.close().await?;
        Ok(())
    }
}

/// `admin_url` with its database name replaced (query parameters kept).
pub(crate) fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// Starts a measurement with clean shared buffers and an empty WAL backlog.
pub(crate) async fn checkpoint(options: &PgConnectOptions) {
    if let Ok(mut conn) = PgConnection::connect_with(options).await {
        let _ = conn.execute("CHECKPOINT").await;
        let _ = conn.close().await;
    }
}
