-- Keeping data current: named universes of symbols, schedules, and the runs they fired.
CREATE TABLE universes (
    name       TEXT    PRIMARY KEY,
    symbols    TEXT    NOT NULL, -- a JSON array of symbols
    -- `manual`, or how the universe was refreshed from the reference tickers endpoint.
    origin     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    -- The schedule's spec as JSON (tickers, timeframes, adjusted, source, trigger, look-back).
    spec        TEXT    NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    next_due_at INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX schedules_due ON schedules (next_due_at) WHERE NOT paused;

-- One row per due time fired: the primary key is what makes a due time fire once.
CREATE TABLE schedule_runs (
    schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    due_at      INTEGER NOT NULL,
    fired_at    INTEGER NOT NULL,
    job_ids     TEXT    NOT NULL DEFAULT '[]', -- a JSON array of job ids
    error       TEXT,
    PRIMARY KEY (schedule_id, due_at)
);

ALTER TABLE jobs ADD COLUMN schedule_id INTEGER REFERENCES schedules (id) ON DELETE SET NULL;
