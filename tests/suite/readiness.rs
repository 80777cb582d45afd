//! Readiness as Kubernetes probes it: `pos serve store` answers NOT_SERVING on the gRPC
//! health service while Redis does not answer (behind a proxy the test cuts and
//! restores) and SERVING again once it does, and NOT_SERVING for good once its database
//! is gone; the edge follows its Redis the same way; and a role that is told to stop
//! says NOT_SERVING, keeps answering new calls for `POS_SHUTDOWN_DRAIN`, then exits 0.

use std::time::Duration;

use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::support::{
    Engine, TestDb,
    process::{PosProcess, migrate, pos},
};

/// A TCP proxy on loopback to `target`; dropping the handle (aborting it) cuts every
/// connection it carries.
async fn proxy(listen: &str, target: String) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind(listen).await.expect("bind the proxy");
    let addr = listener.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        let mut links = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            links.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, task)
}

/// A channel to the server at `addr` (`host:port`).
async fn connect(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// `pos serve store` on the database at `url`, with keys written to `dir`.
fn store_command(url: &str, dir: &std::path::Path) -> tokio::process::Command {
    let (_, key_file, jwks_file) = crate::support::key_files(dir);
    let mut command = pos();
    command
        .args(["serve", "store", "--listen", "127.0.0.1:0"])
        .env("POS_DATABASE_URL", url)
        .env("POS_JWKS_FILE", &jwks_file)
        .env("POS_SIGNING_KEY_FILE", &key_file);
    command
}

async fn status(channel: &Channel, service: &str) -> Option<ServingStatus> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()
        .map(|answer| answer.into_inner().status())
}

/// Waits (up to 15 s) until the store service's health is `wanted`.
async fn becomes(channel: &Channel, wanted: ServingStatus) {
    for _ in 0..150 {
        if status(channel, "pos.v1.StoreService").await == Some(wanted)
            && status(channel, "").await == Some(wanted)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "health never became {wanted:?}: {:?}",
        status(channel, "pos.v1.StoreService").await
    );
}

#[tokio::test]
async fn health_follows_the_database_and_redis() {
    let (test_db, db) = TestDb::create(Engine::Postgres).await;
    let url = test_db.url();
    migrate(&url, "store").await;
    db.close().await;

    let redis = crate::support::redis_url();
    let redis_addr = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    let (proxied, cut) = proxy("127.0.0.1:0", redis_addr.clone()).await;
    let files = tempfile::tempdir().expect("dir");
    let mut command = store_command(&url, files.path());
    command
        .env("POS_REDIS_URL", format!("redis://{proxied}"))
        .env("POS_REDIS_KEY_PREFIX", crate::support::redis_prefix());
    let store = PosProcess::spawn("store", command).await;
    let channel = connect(&store.addr).await;
    becomes(&channel, ServingStatus::Serving).await;

    // Redis gone: not ready; back on the same address: ready again.
    cut.abort();
    let _ = cut.await;
    becomes(&channel, ServingStatus::NotServing).await;
    let (_, restored) = proxy(&proxied, redis_addr).await;
    becomes(&channel, ServingStatus::Serving).await;

    // The database gone: not ready.
    test_db.drop_database().await;
    becomes(&channel, ServingStatus::NotServing).await;
    restored.abort();
    store.kill().await;
}

/// Runs `statement` on the database at `url`.
async fn execute(url: &str, statement: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    conn.execute(sqlx::AssertSqlSafe(statement.to_string()))
        .await
        .expect("statement");
    conn.close().await.ok();
}

#[tokio::test]
async fn a_role_on_an_older_schema_is_not_ready_and_says_why() {
    let (test_db, db) = TestDb::create(Engine::Postgres).await;
    let url = test_db.url();
    migrate(&url, "store").await;
    db.close().await;
    // As if this build's latest migration had not run yet (a rollout ahead of its Job).
    execute(
        &url,
        "CREATE TABLE held_back AS SELECT * FROM store_migrations
           WHERE version = (SELECT max(version) FROM store_migrations);
         DELETE FROM store_migrations WHERE version IN (SELECT version FROM held_back)",
    )
    .await;
    let files = tempfile::tempdir().expect("dir");
    let command = store_command(&url, files.path());
    let store = PosProcess::spawn("store", command).await;
    let channel = connect(&store.addr).await;
    // Not ready from the first probe, with the reason in the log.
    assert_eq!(
        status(&channel, "pos.v1.StoreService").await,
        Some(ServingStatus::NotServing)
    );
    assert!(
        store.stderr().contains("run `pos migrate`"),
        "{}",
        store.stderr()
    );
    // Migrated: ready.
    execute(&url, "INSERT INTO store_migrations SELECT * FROM held_back").await;
    becomes(&channel, ServingStatus::Serving).await;
    store.kill().await;
    test_db.drop_database().await;
}

/// `redis://host:port` of the test Redis, as `host:port` for the proxy.
fn redis_addr() -> String {
    crate::support::redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test]
async fn the_edge_follows_its_redis() {
    let redis_addr = redis_addr();
    let (proxied, cut) = proxy("127.0.0.1:0", redis_addr.clone()).await;
    let files = tempfile::tempdir().expect("dir");
    let (_, key_file, jwks_file) = crate::support::key_files(files.path());
    // Nothing listens on the roles' addresses: the edge connects to them lazily, and its
    // readiness is about what it cannot route without (Redis: rate limits, logouts).
    let nowhere = "http://127.0.0.1:9";
    let mut command = pos();
    command
        .args(["serve", "edge", "--listen", "127.0.0.1:0"])
        .env("POS_STORE_ADDR", nowhere)
        .env("POS_USER_ADDR", nowhere)
        .env("POS_JWKS_FILE", &jwks_file)
        .env("POS_SERVICE_KEY_FILE", &key_file)
        .env("POS_REDIS_URL", format!("redis://{proxied}"))
        .env("POS_REDIS_KEY_PREFIX", crate::support::redis_prefix());
    let edge = PosProcess::spawn("edge", command).await;
    let channel = connect(&edge.addr).await;
    becomes(&channel, ServingStatus::Serving).await;
    cut.abort();
    let _ = cut.await;
    becomes(&channel, ServingStatus::NotServing).await;
    let (_, restored) = proxy(&proxied, redis_addr).await;
    becomes(&channel, ServingStatus::Serving).await;
    restored.abort();
    edge.stop_with_sigterm().await;
}

#[tokio::test]
async fn a_stopping_role_says_not_serving_before_it_drains() {
    let (test_db, db) = TestDb::create(Engine::Postgres).await;
    let url = test_db.url();
    migrate(&url, "store").await;
    db.close().await;
    let files = tempfile::tempdir().expect("dir");
    let mut command = store_command(&url, files.path());
    command
        .env("POS_SHUTDOWN_DRAIN", "2")
        .env("POS_SHUTDOWN_GRACE_SECS", "2");
    let store = PosProcess::spawn("store", command).await;
    let addr = store.addr.clone();
    let channel = connect(&store.addr).await;
    // A watcher of the server's health, as a balancer keeps one: it is a call in flight,
    // so the role drains it through the grace period, and hears the change first.
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("a status").expect("status");
    assert_eq!(first.status(), ServingStatus::Serving);
    let signalled = std::time::Instant::now();
    let stopping = tokio::spawn(store.stop_with_sigterm());
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a change within 5 s")
        .expect("a status before the stream ends")
        .expect("status");
    assert_eq!(next.status(), ServingStatus::NotServing);
    // Draining: it still takes new connections and answers them.
    let late = connect(&addr).await;
    assert_eq!(
        status(&late, pos_common::introspection::LIVENESS).await,
        Some(ServingStatus::Serving),
        "calls are still answered while draining"
    );
    assert_eq!(
        status(&late, "pos.v1.StoreService").await,
        Some(ServingStatus::NotServing)
    );
    stopping.await.expect("stopped with exit 0");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "it served through POS_SHUTDOWN_DRAIN before stopping ({:?})",
        signalled.elapsed()
    );
    test_db.drop_database().await;
}
