-- Bulk sources: a job names where its bars come from (rest, flatfiles, grouped) and may cover
-- the whole market; a bulk job has one task per trading day instead of one per symbol.
ALTER TABLE jobs ADD COLUMN source text NOT NULL DEFAULT 'rest'
    CHECK (source IN ('rest', 'flatfiles', 'grouped'));
ALTER TABLE jobs ADD COLUMN source_reason text;
ALTER TABLE jobs ADD COLUMN universe text NOT NULL DEFAULT 'symbols'
    CHECK (universe IN ('symbols', 'all'));

-- A day task has a date instead of a symbol, and no single series: its rows belong to every
-- ticker of the day.
ALTER TABLE tasks ALTER COLUMN symbol DROP NOT NULL;
ALTER TABLE tasks ALTER COLUMN series_id DROP NOT NULL;
ALTER TABLE tasks ADD COLUMN day date;
ALTER TABLE tasks ADD CONSTRAINT tasks_one_unit CHECK ((symbol IS NULL) <> (day IS NULL));
ALTER TABLE tasks ADD CONSTRAINT tasks_job_day UNIQUE (job_id, day);
-- Upstream calls and bytes, for every task; for day tasks also how far into the day's file the
-- stored rows reach (rows to skip on a restart, compressed bytes for progress) and a note on how
-- the task ended when that is not an error (no file that day, a file unchanged since stored).
ALTER TABLE tasks ADD COLUMN requests bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN rows_done bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN file_offset bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN file_size bigint;
-- The ETag of the file the stored rows came from: a restart skips them only in that same file.
ALTER TABLE tasks ADD COLUMN file_etag text;
ALTER TABLE tasks ADD COLUMN note text;

-- The bulk files stored whole (every ticker): a file replaced upstream (another ETag) is stored
-- again, an unchanged one never twice.
CREATE TABLE source_files (
    key       text        PRIMARY KEY,
    etag      text        NOT NULL,
    size      bigint      NOT NULL,
    rows      bigint      NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
