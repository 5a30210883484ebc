-- Keeping data current: named universes of symbols, schedules, and the runs they fired.
CREATE TABLE universes (
    name       text        PRIMARY KEY,
    symbols    text[]      NOT NULL,
    -- `manual`, or how the universe was refreshed from the reference tickers endpoint.
    origin     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE schedules (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    -- The schedule's spec as JSON (tickers, timeframes, adjusted, source, trigger, look-back).
    spec        jsonb       NOT NULL,
    paused      boolean     NOT NULL DEFAULT false,
    -- When the schedule is next due; every process's scheduler fires it once then.
    next_due_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedules_due ON schedules (next_due_at) WHERE NOT paused;

-- One row per due time fired: the primary key is what makes a due time fire once, whatever the
-- number of processes and restarts.
CREATE TABLE schedule_runs (
    schedule_id bigint      NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    due_at      timestamptz NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    job_ids     uuid[]      NOT NULL DEFAULT '{}',
    error       text,
    PRIMARY KEY (schedule_id, due_at)
);

ALTER TABLE jobs ADD COLUMN schedule_id bigint REFERENCES schedules (id) ON DELETE SET NULL;
