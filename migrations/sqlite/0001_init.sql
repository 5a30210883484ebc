-- Backfill jobs, their per-symbol tasks (the work queue), candles and coverage.
-- Instants are INTEGER Unix milliseconds (UTC); booleans are 0 or 1; job ids are UUID text.

CREATE TABLE series (
    id        INTEGER PRIMARY KEY,
    symbol    TEXT    NOT NULL,
    timeframe TEXT    NOT NULL,
    adjusted  INTEGER NOT NULL,
    UNIQUE (symbol, timeframe, adjusted)
);

CREATE TABLE jobs (
    id              TEXT    PRIMARY KEY,
    symbols         TEXT    NOT NULL, -- a JSON array of symbols
    timeframe       TEXT    NOT NULL,
    range_from      INTEGER NOT NULL,
    range_to        INTEGER NOT NULL,
    adjusted        INTEGER NOT NULL,
    mode            TEXT    NOT NULL CHECK (mode IN ('missing', 'full')),
    status          TEXT    NOT NULL CHECK (status IN
                        ('queued', 'running', 'succeeded', 'completed_with_errors', 'failed', 'cancelled')),
    idempotency_key TEXT    UNIQUE,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    error           TEXT
);

CREATE INDEX jobs_recent ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_recent ON jobs (status, created_at DESC, id DESC);

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    job_id           TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    series_id        INTEGER NOT NULL REFERENCES series (id),
    symbol           TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'queued' CHECK (status IN
                         ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    candles_fetched  INTEGER NOT NULL DEFAULT 0,
    candles_stored   INTEGER NOT NULL DEFAULT 0,
    pages            INTEGER NOT NULL DEFAULT 0,
    checkpoint       INTEGER,
    last_error       TEXT,
    next_attempt_at  INTEGER,
    worker_id        TEXT,
    -- The fencing token: incremented by every claim.
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    started_at       INTEGER,
    finished_at      INTEGER,
    updated_at       INTEGER NOT NULL,
    UNIQUE (job_id, symbol)
);

CREATE INDEX tasks_queued ON tasks (next_attempt_at) WHERE status = 'queued';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_worker ON tasks (worker_id) WHERE status = 'running';

-- WITHOUT ROWID: the primary key is the table, so there is no second B-tree to maintain.
CREATE TABLE candles (
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    open      REAL    NOT NULL,
    high      REAL    NOT NULL,
    low       REAL    NOT NULL,
    close     REAL    NOT NULL,
    volume    REAL    NOT NULL,
    vwap      REAL,
    trades    INTEGER,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;

CREATE TABLE coverage (
    series_id  INTEGER NOT NULL REFERENCES series (id),
    range_from INTEGER NOT NULL,
    range_to   INTEGER NOT NULL,
    PRIMARY KEY (series_id, range_from),
    CHECK (range_from <= range_to)
) WITHOUT ROWID;
