-- Bulk sources: a job names where its bars come from (rest, flatfiles, grouped) and may cover
-- the whole market; a bulk job has one task per trading day instead of one per symbol.
ALTER TABLE jobs ADD COLUMN source TEXT NOT NULL DEFAULT 'rest'
    CHECK (source IN ('rest', 'flatfiles', 'grouped'));
ALTER TABLE jobs ADD COLUMN source_reason TEXT;
ALTER TABLE jobs ADD COLUMN universe TEXT NOT NULL DEFAULT 'symbols'
    CHECK (universe IN ('symbols', 'all'));

-- A day task has a date instead of a symbol, and no single series. SQLite cannot drop NOT NULL
-- from a column, so the table is built again (nothing refers to it).
CREATE TABLE tasks_new (
    id               INTEGER PRIMARY KEY,
    job_id           TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    series_id        INTEGER REFERENCES series (id),
    symbol           TEXT,
    day              TEXT, -- YYYY-MM-DD, a New York trading date
    status           TEXT    NOT NULL DEFAULT 'queued' CHECK (status IN
                         ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    candles_fetched  INTEGER NOT NULL DEFAULT 0,
    candles_stored   INTEGER NOT NULL DEFAULT 0,
    pages            INTEGER NOT NULL DEFAULT 0,
    requests         INTEGER NOT NULL DEFAULT 0,
    bytes            INTEGER NOT NULL DEFAULT 0,
    checkpoint       INTEGER,
    rows_done        INTEGER NOT NULL DEFAULT 0,
    file_offset      INTEGER NOT NULL DEFAULT 0,
    file_size        INTEGER,
    file_etag        TEXT,
    note             TEXT,
    last_error       TEXT,
    next_attempt_at  INTEGER,
    worker_id        TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    started_at       INTEGER,
    finished_at      INTEGER,
    updated_at       INTEGER NOT NULL,
    CHECK ((symbol IS NULL) <> (day IS NULL)),
    UNIQUE (job_id, symbol),
    UNIQUE (job_id, day)
);

INSERT INTO tasks_new (id, job_id, series_id, symbol, status, attempts, candles_fetched,
    candles_stored, pages, checkpoint, last_error, next_attempt_at, worker_id, lease_token,
    lease_expires_at, started_at, finished_at, updated_at)
SELECT id, job_id, series_id, symbol, status, attempts, candles_fetched, candles_stored, pages,
    checkpoint, last_error, next_attempt_at, worker_id, lease_token, lease_expires_at,
    started_at, finished_at, updated_at
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

CREATE INDEX tasks_queued ON tasks (next_attempt_at) WHERE status = 'queued';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_worker ON tasks (worker_id) WHERE status = 'running';
CREATE INDEX tasks_job_status ON tasks (job_id, status, id);

-- The bulk files stored whole (every ticker): a file replaced upstream (another ETag) is stored
-- again, an unchanged one never twice.
CREATE TABLE source_files (
    key       TEXT    PRIMARY KEY,
    etag      TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    rows      INTEGER NOT NULL,
    stored_at INTEGER NOT NULL
);
