-- One request quota per upstream key, shared by every process that uses this database, so that
-- a fleet of workers stays under the key's requests-per-minute limit together. `key` names the
-- upstream key by a hash of it, never the key itself. (SQLite deployments are one process, which
-- keeps its quota in memory: there is no such table there.)
CREATE TABLE request_quotas (
    key          text        PRIMARY KEY,
    -- After a 429, no slot is taken before this instant.
    paused_until timestamptz
);

-- A slot per request taken under a quota. It counts until `frees_at`: while its request is in
-- flight (`done_at` null), the instant its process must have given up on it plus the window (a
-- process that died stops holding it then); once answered, `done_at` plus the window. Every
-- taker prunes the rows that no longer count.
CREATE TABLE request_quota_slots (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key      text        NOT NULL REFERENCES request_quotas (key) ON DELETE CASCADE,
    taken_at timestamptz NOT NULL,
    done_at  timestamptz,
    frees_at timestamptz NOT NULL
);

CREATE INDEX request_quota_slots_by_key ON request_quota_slots (key, frees_at);
