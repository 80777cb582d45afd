-- Aggregation runs: one record per run of a window (also one refused because the window
-- was busy), and the lease a running run holds on its window, so the same window never
-- runs twice at once; a crashed holder's lease expires. Instants are UTC Unix
-- milliseconds. (SQLite twin of the PostgreSQL migration.)

CREATE TABLE aggregation_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job          TEXT    NOT NULL CHECK (job IN ('PRODUCT_SALES', 'SETTLEMENT')),
    term         TEXT    NOT NULL CHECK (term IN ('DAY', 'WEEK', 'MONTH')),
    window_start TEXT NOT NULL
        CHECK (coalesce(date(window_start, '+0 days') = window_start, 0)),
    window_end   TEXT NOT NULL
        CHECK (coalesce(date(window_end, '+0 days') = window_end, 0) AND window_end > window_start),
    shard_index  INTEGER NOT NULL,
    shard_count  INTEGER NOT NULL,
    -- 0: every store of the window (or shard); otherwise the one store an owner ran.
    store_id     INTEGER NOT NULL CHECK (store_id >= 0),
    status       TEXT    NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    rows_read    INTEGER NOT NULL CHECK (rows_read >= 0),
    rows_written INTEGER NOT NULL CHECK (rows_written >= 0),
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    error        TEXT,
    CHECK (shard_count >= 1 AND shard_index >= 0 AND shard_index < shard_count),
    CHECK ((status = 'RUNNING') = (finished_at IS NULL)),
    CHECK ((status = 'FAILED') = (error IS NOT NULL))
) STRICT;
CREATE INDEX aggregation_runs_recent ON aggregation_runs (started_at DESC, id DESC);
CREATE INDEX aggregation_runs_of_store ON aggregation_runs (store_id, started_at DESC, id DESC);

CREATE TABLE aggregation_locks (
    job          TEXT    NOT NULL,
    term         TEXT    NOT NULL,
    window_start TEXT    NOT NULL,
    shard_index  INTEGER NOT NULL,
    shard_count  INTEGER NOT NULL,
    store_id     INTEGER NOT NULL,
    run_id       INTEGER NOT NULL REFERENCES aggregation_runs (id),
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (job, term, window_start, shard_index, shard_count, store_id)
) STRICT;
