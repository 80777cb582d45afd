-- Aggregation runs: one record per run of a window (also one refused because the window
-- was busy), and the lease a running run holds on its window, so the same window never
-- runs twice at once; a crashed holder's lease expires.

CREATE TYPE settlement_job AS ENUM ('PRODUCT_SALES', 'SETTLEMENT');
CREATE TYPE settlement_run_status AS ENUM ('RUNNING', 'SUCCEEDED', 'FAILED');

CREATE TABLE aggregation_runs (
    id           BIGSERIAL             PRIMARY KEY,
    job          settlement_job        NOT NULL,
    term         settlement_term       NOT NULL,
    window_start DATE                  NOT NULL,
    window_end   DATE                  NOT NULL CHECK (window_end > window_start),
    shard_index  INTEGER               NOT NULL,
    shard_count  INTEGER               NOT NULL,
    -- 0: every store of the window (or shard); otherwise the one store an owner ran.
    store_id     BIGINT                NOT NULL CHECK (store_id >= 0),
    status       settlement_run_status NOT NULL,
    rows_read    BIGINT                NOT NULL CHECK (rows_read >= 0),
    rows_written BIGINT                NOT NULL CHECK (rows_written >= 0),
    started_at   timestamptz           NOT NULL,
    finished_at  timestamptz,
    error        TEXT,
    CHECK (shard_count >= 1 AND shard_index >= 0 AND shard_index < shard_count),
    CHECK ((status = 'RUNNING') = (finished_at IS NULL)),
    CHECK ((status = 'FAILED') = (error IS NOT NULL))
);
CREATE INDEX aggregation_runs_recent ON aggregation_runs (started_at DESC, id DESC);
CREATE INDEX aggregation_runs_of_store ON aggregation_runs (store_id, started_at DESC, id DESC);

CREATE TABLE aggregation_locks (
    job          settlement_job  NOT NULL,
    term         settlement_term NOT NULL,
    window_start DATE            NOT NULL,
    shard_index  INTEGER         NOT NULL,
    shard_count  INTEGER         NOT NULL,
    store_id     BIGINT          NOT NULL,
    run_id       BIGINT          NOT NULL REFERENCES aggregation_runs (id),
    expires_at   timestamptz     NOT NULL,
    PRIMARY KEY (job, term, window_start, shard_index, shard_count, store_id)
);
