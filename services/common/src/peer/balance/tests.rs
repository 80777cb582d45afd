//! The balanced peer over real gRPC on loopback: tonic health servers on 127.0.0.1, each
//! counting the calls it answers, and a resolver whose answer the test sets.

use std::{
    collections::HashSet,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::{StreamExt, wrappers::TcpListenerStream};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_check_response, health_client::HealthClient},
    server::HealthReporter,
};

use super::*;
use crate::peer::resolve::Dns;

/// How often the tests' peers re-resolve.
const EVERY: Duration = Duration::from_millis(20);

/// How long a test waits for something that should take a few refreshes.
const PATIENCE: Duration = Duration::from_secs(5);

/// One health server on loopback and the number of calls it answered.
struct Server {
    address: SocketAddr,
    calls: Arc<AtomicUsize>,
    /// The `:authority` of every call it answered.
    authorities: Arc<Mutex<HashSet<String>>>,
    reporter: HealthReporter,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (reporter, health) = tonic_health::server::health_reporter();
        let calls = Arc::new(AtomicUsize::new(0));
        let authorities = Arc::new(Mutex::new(HashSet::new()));
        let (counted, seen) = (calls.clone(), authorities.clone());
        let count = tower::util::MapRequestLayer::new(move |request: http::Request<Body>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let authority = request.uri().authority().map(ToString::to_string);
            seen.lock()
                .expect("authorities")
                .insert(authority.unwrap_or_default());
            request
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .layer(count)
            .add_service(health)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            });
        tokio::spawn(server);
        Self {
            address,
            calls,
            authorities,
            reporter,
            _stop: stop,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The resolver's answer, set by the test: addresses, or a failed lookup.
#[derive(Clone, Default)]
struct Answers(Arc<Mutex<Option<Vec<SocketAddr>>>>);

impl Answers {
    fn set(&self, servers: &[&Server]) {
        *self.0.lock().expect("answers") = Some(servers.iter().map(|s| s.address).collect());
    }

    fn fail(&self) {
        *self.0.lock().expect("answers") = None;
    }
}

impl Resolve for Answers {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = Result<Vec<SocketAddr>, ResolveError>> + Send {
        let answer = self.0.lock().expect("answers").clone();
        let host = host.to_string();
        async move {
            answer.ok_or_else(|| ResolveError::Lookup {
                host,
                port,
                source: std::io::Error::other("injected failure"),
            })
        }
    }
}

fn target() -> Target {
    Target::named(&Uri::from_static("http://store.test:50051")).expect("a named target")
}

/// Waits until two more lookups have finished: the later one began after the caller
/// changed the answer.
async fn refreshed(known: &mut watch::Receiver<Known>) {
    let start = known.borrow().lookups;
    timeout(PATIENCE, known.wait_for(|k| k.lookups >= start + 2))
        .await
        .expect("refreshed in time")
        .expect("the refresh task runs");
}

/// Makes `n` health checks, each of which must succeed.
async fn calls(peer: &Peer, n: usize) {
    let mut client = HealthClient::new(peer.clone());
    for _ in 0..n {
        let answer = client
            .check(HealthCheckRequest::default())
            .await
            .expect("the check is answered");
        assert_eq!(
            answer.into_inner().status(),
            health_check_response::ServingStatus::Serving
        );
    }
}

/// The calls each server answered since `before`.
fn since(servers: &[&Server], before: &[usize]) -> Vec<usize> {
    servers
        .iter()
        .zip(before)
        .map(|(server, before)| server.calls() - before)
        .collect()
}

fn counts(servers: &[&Server]) -> Vec<usize> {
    servers.iter().map(|s| s.calls()).collect()
}

#[tokio::test]
async fn ip_literals_keep_a_single_connection_and_names_are_balanced() {
    for literal in [
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "http://10.1.2.3",
        "http://localhost:8080",
        "http://LocalHost.:8080",
    ] {
        assert!(
            Target::named(&Uri::from_static(literal)).is_none(),
            "{literal}"
        );
    }
    let named = Target::named(&Uri::from_static("http://store:8080")).expect("named");
    assert_eq!((named.host.as_str(), named.port), ("store", 8080));
    let endpoint = named
        .endpoint("10.0.0.7:8080".parse().expect("address"))
        .expect("endpoint");
    assert_eq!(endpoint.uri(), &Uri::from_static("http://10.0.0.7:8080/"));
    let default_port = Target::named(&Uri::from_static("http://store")).expect("named");
    assert_eq!(default_port.port, 80);
}

#[tokio::test]
async fn calls_spread_over_every_resolved_address() {
    let (a, b, c) = (
        Server::start().await,
        Server::start().await,
        Server::start().await,
    );
    let answers = Answers::default();
    answers.set(&[&a, &b, &c]);
    let (peer, _known, _task) = balanced(target(), answers, EVERY);
    calls(&peer, 60).await;
    let got = counts(&[&a, &b, &c]);
    assert_eq!(got.iter().sum::<usize>(), 60);
    assert!(
        got.iter().all(|&n| n > 0),
        "every server answered some: {got:?}"
    );
    for server in [&a, &b, &c] {
        let seen = server.authorities.lock().expect("authorities").clone();
        assert_eq!(
            seen,
            HashSet::from(["store.test:50051".to_string()]),
            "calls name the host the caller named, not the pod's address"
        );
    }
}

#[tokio::test]
async fn a_removed_address_gets_no_further_calls_and_calls_still_succeed() {
    let (a, b, c) = (
        Server::start().await,
        Server::start().await,
        Server::start().await,
    );
    let answers = Answers::default();
    answers.set(&[&a, &b, &c]);
    let (peer, mut known, _task) = balanced(target(), answers.clone(), EVERY);
    calls(&peer, 30).await;
    answers.set(&[&a, &b]);
    refreshed(&mut known).await;
    assert_eq!(known.borrow().addresses, 2);
    let before = counts(&[&a, &b, &c]);
    calls(&peer, 60).await;
    let got = since(&[&a, &b, &c], &before);
    assert_eq!(got[2], 0, "the removed server got no call: {got:?}");
    assert!(got[0] > 0 && got[1] > 0, "the others share them: {got:?}");
}

#[tokio::test]
async fn an_address_added_later_starts_getting_calls() {
    let (a, b, c) = (
        Server::start().await,
        Server::start().await,
        Server::start().await,
    );
    let answers = Answers::default();
    answers.set(&[&a, &b]);
    let (peer, mut known, _task) = balanced(target(), answers.clone(), EVERY);
    calls(&peer, 30).await;
    assert_eq!(c.calls(), 0);
    answers.set(&[&a, &b, &c]);
    refreshed(&mut known).await;
    let before = counts(&[&a, &b, &c]);
    calls(&peer, 60).await;
    let got = since(&[&a, &b, &c], &before);
    assert!(
        got.iter().all(|&n| n > 0),
        "every server answered some: {got:?}"
    );
}

#[tokio::test]
async fn a_failed_or_empty_lookup_keeps_the_previous_addresses() {
    let (a, b) = (Server::start().await, Server::start().await);
    let answers = Answers::default();
    answers.set(&[&a, &b]);
    let (peer, mut known, _task) = balanced(target(), answers.clone(), EVERY);
    calls(&peer, 10).await;
    answers.fail();
    refreshed(&mut known).await;
    refreshed(&mut known).await;
    assert_eq!(known.borrow().addresses, 2);
    answers.set(&[]);
    refreshed(&mut known).await;
    assert_eq!(known.borrow().addresses, 2);
    let before = counts(&[&a, &b]);
    calls(&peer, 60).await;
    let got = since(&[&a, &b], &before);
    assert!(got.iter().all(|&n| n > 0), "both still answer: {got:?}");
}

#[tokio::test]
async fn a_name_that_never_resolved_fails_calls_unavailable() {
    let answers = Answers::default();
    answers.fail();
    let (peer, _known, _task) = balanced(target(), answers, EVERY);
    let mut client = HealthClient::new(peer);
    let failure = timeout(PATIENCE, client.check(HealthCheckRequest::default()))
        .await
        .expect("fails at once rather than waiting for an address")
        .expect_err("no address to call");
    assert_eq!(failure.code(), tonic::Code::Unavailable, "{failure:?}");
}

#[tokio::test]
async fn a_stream_in_flight_on_a_removed_address_runs_to_its_end() {
    let (a, b) = (Server::start().await, Server::start().await);
    let answers = Answers::default();
    answers.set(&[&a]);
    let (peer, mut known, _task) = balanced(target(), answers.clone(), EVERY);
    let mut client = HealthClient::new(peer.clone());
    let mut watch = client
        .watch(HealthCheckRequest::default())
        .await
        .expect("watching")
        .into_inner();
    let first = watch.next().await.expect("a first status").expect("status");
    assert_eq!(
        first.status(),
        health_check_response::ServingStatus::Serving
    );
    answers.set(&[&b]);
    refreshed(&mut known).await;
    // The next call makes the balancer take the removal, and goes to b.
    calls(&peer, 5).await;
    assert_eq!(b.calls(), 5);
    a.reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let next = timeout(PATIENCE, watch.next())
        .await
        .expect("the stream still runs")
        .expect("a second status")
        .expect("status");
    assert_eq!(
        next.status(),
        health_check_response::ServingStatus::NotServing
    );
}

#[tokio::test]
async fn the_refresh_task_ends_once_the_peer_is_dropped() {
    let a = Server::start().await;
    let answers = Answers::default();
    answers.set(&[&a]);
    // Dropping the peer closes the balancer's change queue, even while the watch of
    // what is known is held.
    let (peer, known, task) = balanced(target(), answers.clone(), EVERY);
    calls(&peer, 3).await;
    drop(peer);
    timeout(PATIENCE, task)
        .await
        .expect("the task ended")
        .expect("without panicking");
    drop(known);
    // And dropping every clone of the peer ends it when no call was ever made.
    let (peer, known, task) = balanced(target(), answers, EVERY);
    let clone = peer.clone();
    drop((peer, known));
    tokio::time::sleep(EVERY * 3).await;
    assert!(!task.is_finished(), "a clone is still held");
    drop(clone);
    timeout(PATIENCE, task)
        .await
        .expect("the task ended")
        .expect("without panicking");
}

#[tokio::test]
async fn the_system_resolver_answers_with_every_address_of_a_name() {
    let addresses = Dns
        .resolve("localhost", 8080)
        .await
        .expect("localhost resolves");
    assert!(!addresses.is_empty());
    assert!(
        addresses
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080),
        "{addresses:?}"
    );
    let unknown = Dns.resolve("no-such-host.invalid", 8080).await;
    assert!(
        matches!(unknown, Err(ResolveError::Lookup { .. })),
        "{unknown:?}"
    );
}
