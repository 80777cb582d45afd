//! Aggregation runs and window leases on PostgreSQL. Taking a lease is one upsert that
//! succeeds only over an expired lease, so of two runs starting at once the second waits
//! for the first's row and then finds the lease held.

use chrono::{DateTime, NaiveDate, Utc};
use pos_settlement_storage::{
    AggregationRun, Begun, Finished, NewRun, RunFilter, RunId, RunStatus, StorageResult, Window,
    runs::{count_of, job_name, job_of, scope_of},
    term_name, term_of,
};
use sqlx::PgPool;

pub async fn begin(pool: &PgPool, run: &NewRun) -> StorageResult<Begun> {
    let (job, term) = (job_name(run.job), term_name(run.term));
    let (shard_index, shard_count) = (
        i32::try_from(run.scope.shard_index).unwrap_or(i32::MAX),
        i32::try_from(run.scope.shard_count).unwrap_or(i32::MAX),
    );
    let store = run.scope.store_column();
    let mut tx = pool.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO aggregation_runs
           (job, term, window_start, window_end, shard_index, shard_count, store_id, status,
            rows_read, rows_written, started_at)
         VALUES ($1::text::settlement_job, $2::text::settlement_term, $3, $4, $5, $6, $7,
                 'RUNNING', 0, 0, $8)
         RETURNING id",
        job,
        term,
        run.window.start,
        run.window.end,
        shard_index,
        shard_count,
        store,
        run.started_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    // A holder whose lease ran out stopped without finishing (it crashed): its record
    // says so when the lease is taken over.
    let expired = sqlx::query_scalar!(
        "SELECT run_id FROM aggregation_locks
         WHERE job = $1::text::settlement_job AND term = $2::text::settlement_term
           AND window_start = $3 AND shard_index = $4 AND shard_count = $5 AND store_id = $6
           AND expires_at <= $7
         FOR UPDATE",
        job,
        term,
        run.window.start,
        shard_index,
        shard_count,
        store,
        run.started_at,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let taken = sqlx::query_scalar!(
        "INSERT INTO aggregation_locks
           (job, term, window_start, shard_index, shard_count, store_id, run_id, expires_at)
         VALUES ($1::text::settlement_job, $2::text::settlement_term, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (job, term, window_start, shard_index, shard_count, store_id)
         DO UPDATE SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
           WHERE aggregation_locks.expires_at <= $9
         RETURNING run_id",
        job,
        term,
        run.window.start,
        shard_index,
        shard_count,
        store,
        id,
        run.lease_until,
        run.started_at,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if taken.is_some() {
        if let Some(stale) = expired {
            sqlx::query!(
                "UPDATE aggregation_runs
                 SET status = 'FAILED', finished_at = $2,
                     error = 'stopped without finishing: its lease on the window expired'
                 WHERE id = $1 AND status = 'RUNNING'",
                stale,
                run.started_at,
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        return Ok(Begun::Started(RunId(id)));
    }
    let holder = sqlx::query!(
        "SELECT run_id, expires_at FROM aggregation_locks
         WHERE job = $1::text::settlement_job AND term = $2::text::settlement_term
           AND window_start = $3 AND shard_index = $4 AND shard_count = $5 AND store_id = $6",
        job,
        term,
        run.window.start,
        shard_index,
        shard_count,
        store,
    )
    .fetch_one(&mut *tx)
    .await?;
    let error = format!(
        "the window is busy: run {} holds it until {}",
        holder.run_id, holder.expires_at
    );
    sqlx::query!(
        "UPDATE aggregation_runs SET status = 'FAILED', finished_at = $2, error = $3
         WHERE id = $1",
        id,
        run.started_at,
        error,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Begun::Busy {
        refused: RunId(id),
        holder: RunId(holder.run_id),
        until: holder.expires_at,
    })
}

pub async fn renew(pool: &PgPool, run: RunId, until: DateTime<Utc>) -> StorageResult<bool> {
    let renewed = sqlx::query!(
        "UPDATE aggregation_locks SET expires_at = $2 WHERE run_id = $1",
        run.0,
        until,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(renewed > 0)
}

pub async fn finish(pool: &PgPool, run: RunId, finished: &Finished) -> StorageResult<()> {
    let (status, rows_read, rows_written, at, error) = finished.columns();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "UPDATE aggregation_runs
         SET status = $2::text::settlement_run_status, rows_read = $3, rows_written = $4,
             finished_at = $5, error = $6
         WHERE id = $1 AND status = 'RUNNING'",
        run.0,
        status.as_str(),
        rows_read,
        rows_written,
        at,
        error,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM aggregation_locks WHERE run_id = $1", run.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

struct RunRow {
    id: i64,
    job: String,
    term: String,
    window_start: NaiveDate,
    window_end: NaiveDate,
    shard_index: i32,
    shard_count: i32,
    store_id: i64,
    status: String,
    rows_read: i64,
    rows_written: i64,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

impl RunRow {
    fn decode(self) -> StorageResult<AggregationRun> {
        Ok(AggregationRun {
            id: RunId(self.id),
            job: job_of("aggregation_runs.job", &self.job)?,
            term: term_of("aggregation_runs.term", &self.term)?,
            window: Window {
                start: self.window_start,
                end: self.window_end,
            },
            scope: scope_of(
                i64::from(self.shard_index),
                i64::from(self.shard_count),
                self.store_id,
            )?,
            status: RunStatus::of("aggregation_runs.status", &self.status)?,
            rows_read: count_of("aggregation_runs.rows_read", self.rows_read)?,
            rows_written: count_of("aggregation_runs.rows_written", self.rows_written)?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error,
        })
    }
}

pub async fn list(pool: &PgPool, filter: &RunFilter) -> StorageResult<Vec<AggregationRun>> {
    sqlx::query_as!(
        RunRow,
        r#"SELECT id, job::text AS "job!", term::text AS "term!", window_start, window_end,
                  shard_index, shard_count, store_id, status::text AS "status!", rows_read,
                  rows_written, started_at, finished_at, error
           FROM aggregation_runs
           WHERE ($1::bigint IS NULL OR store_id = $1
                  OR (store_id = 0 AND $1 % shard_count = shard_index))
             AND ($2::text IS NULL OR job::text = $2)
             AND ($3::text IS NULL OR term::text = $3)
             AND ($4::bigint IS NULL OR id < $4)
           ORDER BY id DESC
           LIMIT $5"#,
        filter.store.map(|store| store.get()),
        filter.job.map(job_name),
        filter.term.map(term_name),
        filter.before.map(|run| run.0),
        i64::from(filter.limit),
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(RunRow::decode)
    .collect()
}
