-- Backfill jobs, their per-symbol tasks (the work queue), candles and coverage.

-- One row per candle series: (symbol, timeframe, adjusted). Candles and coverage refer to a
-- series by a 4-byte id instead of repeating the text key in every row.
CREATE TABLE series (
    id        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol    text    NOT NULL,
    timeframe text    NOT NULL,
    adjusted  boolean NOT NULL,
    UNIQUE (symbol, timeframe, adjusted)
);

CREATE TABLE jobs (
    id              uuid        PRIMARY KEY,
    symbols         text[]      NOT NULL,
    timeframe       text        NOT NULL,
    range_from      timestamptz NOT NULL,
    range_to        timestamptz NOT NULL,
    adjusted        boolean     NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('missing', 'full')),
    status          text        NOT NULL CHECK (status IN
                        ('queued', 'running', 'succeeded', 'completed_with_errors', 'failed', 'cancelled')),
    idempotency_key text        UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    error           text
);

CREATE INDEX jobs_recent ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_recent ON jobs (status, created_at DESC, id DESC);

CREATE TABLE tasks (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id           uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    series_id        integer     NOT NULL REFERENCES series (id),
    symbol           text        NOT NULL,
    status           text        NOT NULL DEFAULT 'queued' CHECK (status IN
                         ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         integer     NOT NULL DEFAULT 0,
    candles_fetched  bigint      NOT NULL DEFAULT 0,
    candles_stored   bigint      NOT NULL DEFAULT 0,
    pages            bigint      NOT NULL DEFAULT 0,
    checkpoint       timestamptz,
    last_error       text,
    next_attempt_at  timestamptz,
    worker_id        text,
    -- The fencing token: incremented by every claim.
    lease_token      bigint      NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, symbol)
);

-- What claim_tasks and wait_for_work scan: queued tasks by due time, running ones by expiry.
CREATE INDEX tasks_queued ON tasks (next_attempt_at) WHERE status = 'queued';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_worker ON tasks (worker_id) WHERE status = 'running';

-- Columns ordered so that no alignment padding is needed (8-byte values first). No foreign key
-- to series: its per-row trigger would slow ingest down, and series rows are never deleted.
CREATE TABLE candles (
    ts        timestamptz      NOT NULL,
    open      double precision NOT NULL,
    high      double precision NOT NULL,
    low       double precision NOT NULL,
    close     double precision NOT NULL,
    volume    double precision NOT NULL,
    vwap      double precision,
    trades    bigint,
    series_id integer          NOT NULL,
    PRIMARY KEY (series_id, ts)
);

-- The merged intervals already fetched per series (disjoint, not touching).
CREATE TABLE coverage (
    series_id  integer     NOT NULL REFERENCES series (id),
    range_from timestamptz NOT NULL,
    range_to   timestamptz NOT NULL,
    PRIMARY KEY (series_id, range_from),
    CHECK (range_from <= range_to)
);
