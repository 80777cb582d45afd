//! Aggregation runs and window leases on SQLite: taking a lease runs in one write
//! transaction (`BEGIN IMMEDIATE`), so two runs starting at once take turns and the
//! second finds the lease held. Instants are UTC Unix milliseconds.

use chrono::{DateTime, Utc};
use pos_common::storage::{from_millis, to_millis};
use pos_settlement_storage::{
    AggregationRun, Begun, Finished, NewRun, RunFilter, RunId, RunStatus, StorageResult, Window,
    runs::{count_of, job_name, job_of, scope_of},
    term_name, term_of,
};
use sqlx::SqlitePool;

use crate::day;

pub async fn begin(pool: &SqlitePool, run: &NewRun) -> StorageResult<Begun> {
    let (job, term) = (job_name(run.job), term_name(run.term));
    let (start, end) = (run.window.start.to_string(), run.window.end.to_string());
    let (shard_index, shard_count) = (
        i64::from(run.scope.shard_index),
        i64::from(run.scope.shard_count),
    );
    let store = run.scope.store_column();
    let (now, until) = (to_millis(run.started_at), to_millis(run.lease_until));
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO aggregation_runs
             (job, term, window_start, window_end, shard_index, shard_count, store_id, status,
              rows_read, rows_written, started_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'RUNNING', 0, 0, ?8)
           RETURNING id AS "id!""#,
        job,
        term,
        start,
        end,
        shard_index,
        shard_count,
        store,
        now,
    )
    .fetch_one(&mut *tx)
    .await?;
    let held = sqlx::query!(
        "SELECT run_id, expires_at FROM aggregation_locks
         WHERE job = ?1 AND term = ?2 AND window_start = ?3 AND shard_index = ?4
           AND shard_count = ?5 AND store_id = ?6",
        job,
        term,
        start,
        shard_index,
        shard_count,
        store,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(holder) = held.as_ref().filter(|held| held.expires_at > now) {
        let until = from_millis("aggregation_locks.expires_at", holder.expires_at)?;
        let error = format!(
            "the window is busy: run {} holds it until {until}",
            holder.run_id
        );
        sqlx::query!(
            "UPDATE aggregation_runs SET status = 'FAILED', finished_at = ?2, error = ?3
             WHERE id = ?1",
            id,
            now,
            error,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Begun::Busy {
            refused: RunId(id),
            holder: RunId(holder.run_id),
            until,
        });
    }
    if let Some(stale) = held {
        // Its holder stopped without finishing (it crashed): its record says so.
        sqlx::query!(
            "UPDATE aggregation_runs
             SET status = 'FAILED', finished_at = ?2,
                 error = 'stopped without finishing: its lease on the window expired'
             WHERE id = ?1 AND status = 'RUNNING'",
            stale.run_id,
            now,
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "INSERT INTO aggregation_locks
           (job, term, window_start, shard_index, shard_count, store_id, run_id, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (job, term, window_start, shard_index, shard_count, store_id)
         DO UPDATE SET run_id = excluded.run_id, expires_at = excluded.expires_at",
        job,
        term,
        start,
        shard_index,
        shard_count,
        store,
        id,
        until,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Begun::Started(RunId(id)))
}

pub async fn renew(pool: &SqlitePool, run: RunId, until: DateTime<Utc>) -> StorageResult<bool> {
    let until = to_millis(until);
    let renewed = sqlx::query!(
        "UPDATE aggregation_locks SET expires_at = ?2 WHERE run_id = ?1",
        run.0,
        until,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(renewed > 0)
}

pub async fn finish(pool: &SqlitePool, run: RunId, finished: &Finished) -> StorageResult<()> {
    let (status, rows_read, rows_written, at, error) = finished.columns();
    let (status, at) = (status.as_str(), to_millis(at));
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        "UPDATE aggregation_runs
         SET status = ?2, rows_read = ?3, rows_written = ?4, finished_at = ?5, error = ?6
         WHERE id = ?1 AND status = 'RUNNING'",
        run.0,
        status,
        rows_read,
        rows_written,
        at,
        error,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM aggregation_locks WHERE run_id = ?1", run.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

struct RunRow {
    id: i64,
    job: String,
    term: String,
    window_start: String,
    window_end: String,
    shard_index: i64,
    shard_count: i64,
    store_id: i64,
    status: String,
    rows_read: i64,
    rows_written: i64,
    started_at: i64,
    finished_at: Option<i64>,
    error: Option<String>,
}

impl RunRow {
    fn decode(self) -> StorageResult<AggregationRun> {
        Ok(AggregationRun {
            id: RunId(self.id),
            job: job_of("aggregation_runs.job", &self.job)?,
            term: term_of("aggregation_runs.term", &self.term)?,
            window: Window {
                start: day("aggregation_runs.window_start", &self.window_start)?,
                end: day("aggregation_runs.window_end", &self.window_end)?,
            },
            scope: scope_of(self.shard_index, self.shard_count, self.store_id)?,
            status: RunStatus::of("aggregation_runs.status", &self.status)?,
            rows_read: count_of("aggregation_runs.rows_read", self.rows_read)?,
            rows_written: count_of("aggregation_runs.rows_written", self.rows_written)?,
            started_at: from_millis("aggregation_runs.started_at", self.started_at)?,
            finished_at: self
                .finished_at
                .map(|at| from_millis("aggregation_runs.finished_at", at))
                .transpose()?,
            error: self.error,
        })
    }
}

pub async fn list(pool: &SqlitePool, filter: &RunFilter) -> StorageResult<Vec<AggregationRun>> {
    let store = filter.store.map(|store| store.get());
    let job = filter.job.map(job_name);
    let term = filter.term.map(term_name);
    let before = filter.before.map(|run| run.0);
    let limit = i64::from(filter.limit);
    sqlx::query_as!(
        RunRow,
        r#"SELECT id AS "id!", job, term, window_start, window_end, shard_index, shard_count,
                  store_id, status, rows_read, rows_written, started_at, finished_at, error
           FROM aggregation_runs
           WHERE (?1 IS NULL OR store_id = ?1
                  OR (store_id = 0 AND ?1 % shard_count = shard_index))
             AND (?2 IS NULL OR job = ?2)
             AND (?3 IS NULL OR term = ?3)
             AND (?4 IS NULL OR id < ?4)
           ORDER BY id DESC
           LIMIT ?5"#,
        store,
        job,
        term,
        before,
        limit,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(RunRow::decode)
    .collect()
}
