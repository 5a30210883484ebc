//! Runs the behaviour suite in `conformance` against PostgreSQL (a fresh database per test,
//! through `#[sqlx::test]`, which fails without DATABASE_URL) and SQLite (a temporary file),
//! plus a few backend-specific tests.

mod conformance;
mod quota;

use backfill_storage::sqlite::SqliteStorage;

/// A migrated SQLite database in a temporary directory, removed on drop.
struct TempSqlite {
    storage: SqliteStorage,
    _dir: tempfile::TempDir,
}

impl TempSqlite {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("backfill.db"))
            .await
            .unwrap();
        Self { storage, _dir: dir }
    }
}

macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod postgres {
            use backfill_storage::postgres::PgStorage;
            $(
                #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
                async fn $check(pool: sqlx::PgPool) {
                    crate::conformance::$check(&PgStorage::from_pool(pool)).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let db = crate::TempSqlite::new().await;
                    crate::conformance::$check(&db.storage).await;
                }
            )*
        }
    };
}

suite!(
    creates_a_job_with_one_task_per_symbol,
    idempotency_key_returns_the_same_job,
    same_page_twice_stores_nothing_new,
    pages_of_any_size_are_stored_whole,
    a_changed_close_counts_as_one_update,
    repeats_within_a_page_count_once_and_the_last_wins,
    a_page_of_another_symbol_is_rejected,
    a_write_after_the_lease_expired_is_rejected,
    concurrent_claims_never_share_a_task,
    a_claim_for_one_job_takes_only_its_tasks,
    an_expired_lease_is_reclaimed,
    heartbeat_extends_leases_and_reports_cancellation,
    cancel_and_retry_follow_the_state_machine,
    retry_keeps_checkpoints_and_counters,
    recent_jobs_are_ordered_limited_and_filtered,
    jobs_are_counted_by_status,
    listed_progress_matches_the_job_details,
    keyset_pagination_returns_every_candle_once,
    coverage_merges_adjacent_and_overlapping_intervals,
    a_transient_failure_waits_for_its_retry_time,
    max_attempts_leads_to_failed,
    a_task_whose_worker_always_dies_fails_after_its_last_attempt,
    job_status_settles_when_all_tasks_end,
    release_leases_requeues_at_once,
    wait_for_work_wakes_on_create,
    concurrent_writers_of_one_series_store_each_candle_once,
    a_bulk_job_has_one_task_per_weekday,
    day_rows_of_many_symbols_are_stored_fenced_and_counted,
    a_finished_day_covers_its_series_and_records_its_file,
    a_due_time_fires_once_with_a_job_per_timeframe,
    concurrent_firing_creates_each_run_once,
    resampled_pages_equal_the_whole_series_resampled,
    the_quality_report_counts_what_is_stored,
    paused_schedules_do_not_fire_and_resume_after_now,
    overlapping_or_duplicate_schedules_are_refused,
    universes_are_stored_and_runs_read_them_when_due,
    a_run_that_cannot_make_its_jobs_records_why,
    splits_and_dividends_are_upserted_once_per_date,
    adjusted_tasks_record_when_their_series_was_fetched_whole,
    adjusted_day_tasks_record_when_their_series_were_fetched,
);

mod postgres_only {
    use backfill_storage::postgres::{PgIngestMethod, PgStorage};
    use backfill_storage::{Error, JobRepository};

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn jobs_of_a_demo_handle_say_they_are_simulated(pool: sqlx::PgPool) {
        let demo = PgStorage::from_pool(pool.clone()).with_simulated_jobs(true);
        let real = PgStorage::from_pool(pool);
        crate::conformance::jobs_of_a_demo_handle_say_they_are_simulated(&demo, &real).await;
    }

    fn staged(pool: sqlx::PgPool) -> PgStorage {
        PgStorage::from_pool(pool).with_ingest_method(PgIngestMethod::CopyStaging)
    }

    fn unnest(pool: sqlx::PgPool) -> PgStorage {
        PgStorage::from_pool(pool).with_ingest_method(PgIngestMethod::Unnest)
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn unnest_ingest_stores_nothing_new_twice(pool: sqlx::PgPool) {
        crate::conformance::same_page_twice_stores_nothing_new(&unnest(pool)).await;
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn unnest_ingest_counts_one_update(pool: sqlx::PgPool) {
        crate::conformance::a_changed_close_counts_as_one_update(&unnest(pool)).await;
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn unnest_ingest_dedupes(pool: sqlx::PgPool) {
        crate::conformance::repeats_within_a_page_count_once_and_the_last_wins(&unnest(pool)).await;
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn copy_staging_ingest_stores_nothing_new_twice(pool: sqlx::PgPool) {
        crate::conformance::same_page_twice_stores_nothing_new(&staged(pool)).await;
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn copy_staging_ingest_counts_one_update(pool: sqlx::PgPool) {
        crate::conformance::a_changed_close_counts_as_one_update(&staged(pool)).await;
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn copy_staging_ingest_dedupes(pool: sqlx::PgPool) {
        crate::conformance::repeats_within_a_page_count_once_and_the_last_wins(&staged(pool)).await;
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn a_corrupt_row_is_invalid_data_not_a_panic(pool: sqlx::PgPool) {
        let s = PgStorage::from_pool(pool.clone());
        let job = crate::conformance::some_job(&s).await;
        sqlx::query("UPDATE jobs SET timeframe = 'fortnightly'")
            .execute(&pool)
            .await
            .unwrap();
        assert!(matches!(s.get_job(job).await, Err(Error::InvalidData(_))));
        assert!(matches!(
            s.list_jobs(10, None).await,
            Err(Error::InvalidData(_))
        ));
    }

    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn database_errors_are_typed_and_transient_when_the_pool_is_gone(pool: sqlx::PgPool) {
        let s = PgStorage::from_pool(pool.clone());
        pool.close().await;
        let err = s.ping().await.unwrap_err();
        assert!(matches!(err, Error::Database(_)), "{err:?}");
        assert!(err.is_transient());
    }
}

/// Request quotas shared by the processes of a database: PostgreSQL only (an SQLite database
/// has one process, which keeps its quota in memory).
mod postgres_quota {
    use backfill_storage::postgres::PgStorage;

    macro_rules! quota_suite {
        ($($check:ident),* $(,)?) => {
            $(
                #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
                async fn $check(pool: sqlx::PgPool) {
                    crate::quota::$check(&PgStorage::from_pool(pool)).await;
                }
            )*
        };
    }

    quota_suite!(
        concurrent_takers_never_hold_more_than_the_limit,
        a_full_quota_says_how_long_to_wait,
        a_slot_frees_a_window_after_it_is_given_back,
        a_slot_never_given_back_goes_stale,
        a_pause_holds_the_key_back_and_never_shortens,
    );

    /// Slots that no longer count are deleted by the next taker, so the table stays as small as
    /// the limit however many requests go through.
    #[sqlx::test(migrator = "backfill_storage::postgres::MIGRATOR")]
    async fn slots_that_no_longer_count_are_pruned(pool: sqlx::PgPool) {
        use backfill_storage::QuotaStore;
        use std::time::Duration;
        let store = PgStorage::from_pool(pool.clone());
        let q = crate::quota::quota(
            "pruned",
            3,
            Duration::from_millis(20),
            Duration::from_secs(60),
        );
        for _ in 0..15 {
            let (slot, _, _) = crate::quota::take(&store, &q).await;
            store.release(&q, slot).await.unwrap();
        }
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM request_quota_slots")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!((1..=3).contains(&rows), "{rows} rows after 15 requests");
    }
}

mod sqlite_only {
    use backfill_storage::sqlite::SqliteStorage;
    use backfill_storage::{Error, JobRepository};

    #[tokio::test]
    async fn jobs_of_a_demo_handle_say_they_are_simulated() {
        let db = crate::TempSqlite::new().await;
        let demo = db.storage.clone().with_simulated_jobs(true);
        crate::conformance::jobs_of_a_demo_handle_say_they_are_simulated(&demo, &db.storage).await;
    }

    #[tokio::test]
    async fn open_creates_and_reopens_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested.db");
        let s = SqliteStorage::open(&path).await.unwrap();
        let job = crate::conformance::some_job(&s).await;
        s.pool().close().await;
        assert!(path.exists());
        let again = SqliteStorage::open(&path).await.unwrap();
        assert_eq!(again.get_job(job).await.unwrap().job.id, job);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(again.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// Page writes leave the copy of the WAL into the database file to a checkpointer of their
    /// own: the file fills up although the write connection alone would not checkpoint before
    /// the WAL held 2,048 pages (a page of 20,000 candles is about 350).
    #[tokio::test]
    async fn pages_reach_the_database_file_through_the_background_checkpointer() {
        let db = crate::TempSqlite::new().await;
        let file = db._dir.path().join("backfill.db");
        let before = std::fs::metadata(&file).unwrap().len();
        crate::conformance::store_one_page(&db.storage, 20_000).await;
        // 20,000 candles take more than a megabyte once they are in the file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let len = std::fs::metadata(&file).unwrap().len();
            if len > before + 1_000_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stayed at {len} bytes (was {before})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_corrupt_row_is_invalid_data_not_a_panic() {
        let db = crate::TempSqlite::new().await;
        let job = crate::conformance::some_job(&db.storage).await;
        sqlx::query("UPDATE jobs SET timeframe = 'fortnightly'")
            .execute(db.storage.pool())
            .await
            .unwrap();
        assert!(matches!(
            db.storage.get_job(job).await,
            Err(Error::InvalidData(_))
        ));
        sqlx::query("UPDATE jobs SET timeframe = '1m', symbols = 'not json'")
            .execute(db.storage.pool())
            .await
            .unwrap();
        assert!(matches!(
            db.storage.get_job(job).await,
            Err(Error::InvalidData(_))
        ));
    }
}
