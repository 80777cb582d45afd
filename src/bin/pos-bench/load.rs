//! Loading the settlement benchmark's data set into PostgreSQL with `COPY … FROM STDIN`
//! (never row by row): each table in load order, its rows generated in chunks while the
//! server takes the previous one, then the id sequences moved past the loaded ids and the
//! tables vacuumed and analysed, as autovacuum would have left tables of that age.

use std::time::Instant;

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};

use crate::dataset::{Generator, Table};

/// Units (stores, products or trades) generated per chunk sent.
const CHUNK: u64 = 20_000;

/// Rows loaded per table.
pub type Loaded = Vec<(Table, u64)>;

/// Loads every table of the data set into the (migrated) database at `url`.
pub async fn load(url: &str, generator: &Generator) -> anyhow::Result<Loaded> {
    let mut db = PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let mut loaded = Vec::new();
    for table in Table::ALL {
        let started = Instant::now();
        let units = generator.shape().units(table);
        let mut copy = db
            .copy_in_raw(table.copy_statement())
            .await
            .with_context(|| format!("COPY {}", table.name()))?;
        let mut from = 0;
        while from < units {
            let to = (from + CHUNK).min(units);
            let mut rows = String::with_capacity(4 << 20);
            generator.write(table, from, to, &mut rows)?;
            copy.send(rows.into_bytes())
                .await
                .with_context(|| format!("COPY {}", table.name()))?;
            from = to;
        }
        let rows = copy
            .finish()
            .await
            .with_context(|| format!("COPY {}", table.name()))?;
        eprintln!(
            "pos-bench: {} rows copied into {} in {:.1} s",
            rows,
            table.name(),
            started.elapsed().as_secs_f64()
        );
        loaded.push((table, rows));
    }
    // Whatever writes next (a real order, a store signing up) gets ids past the loaded.
    for (table, sequence) in [
        ("stores", "stores_id_seq"),
        ("products", "products_id_seq"),
        ("trades", "trades_id_seq"),
        ("trade_payments", "trade_payments_id_seq"),
    ] {
        db.execute(sqlx::AssertSqlSafe(format!(
            "SELECT setval('{sequence}', (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )))
        .await
        .with_context(|| format!("moving {sequence}"))?;
    }
    let started = Instant::now();
    db.execute("VACUUM (ANALYZE)")
        .await
        .context("VACUUM (ANALYZE)")?;
    eprintln!(
        "pos-bench: vacuumed and analysed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = db.close().await;
    Ok(loaded)
}
