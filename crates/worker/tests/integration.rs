//! The worker over real HTTP (polygon-sim) and real storage, on PostgreSQL (a fresh database per
//! test through `#[sqlx::test]`, which fails without DATABASE_URL) and on SQLite (a temporary
//! file). Each scenario in `scenarios` runs on both.

mod scenarios;

use std::path::PathBuf;
use std::sync::Arc;

use backfill_storage::postgres::PgStorage;
use backfill_storage::sqlite::SqliteStorage;
use backfill_storage::Storage;
use sqlx::postgres::PgConnectOptions;

/// A database that several workers can open, each with its own connection pool.
#[derive(Debug)]
pub(crate) enum Db {
    Pg(Box<PgConnectOptions>),
    /// The file, and the directory that holds it until the test ends.
    Sqlite {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
}

impl Db {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backfill.db");
        Self::Sqlite { path, _dir: dir }
    }

    pub(crate) fn pg(pool: &sqlx::PgPool) -> Self {
        Self::Pg(Box::new((*pool.connect_options()).clone()))
    }

    /// A new handle with its own pool, migrated.
    pub(crate) async fn open(&self) -> Arc<dyn Storage> {
        match self {
            Self::Pg(options) => {
                let s = PgStorage::connect_with((**options).clone()).await.unwrap();
                s.migrate().await.unwrap();
                Arc::new(s)
            }
            Self::Sqlite { path, .. } => Arc::new(SqliteStorage::open(path).await.unwrap()),
        }
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    crate::scenarios::$name(crate::Db::pg(&pool)).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::scenarios::$name(crate::Db::sqlite().await).await;
                }
            )*
        }
    };
}

scenarios!(
    stores_exactly_the_simulators_candles,
    the_same_job_twice_stores_nothing_new,
    missing_mode_after_a_partial_job_fetches_only_the_rest,
    two_workers_share_a_job,
    a_killed_worker_is_finished_by_the_other,
    cancel_keeps_what_was_stored_and_retry_finishes_the_rest,
    shutdown_releases_leases_for_another_worker_at_once,
    a_rejected_key_fails_every_symbol_with_a_clear_message,
    random_upstream_faults_still_store_exactly_the_simulators_candles,
    rest_and_grouped_store_identical_day_bars,
    flat_files_store_the_same_candles_as_rest,
    the_scheduler_refetches_series_a_split_made_stale,
);
