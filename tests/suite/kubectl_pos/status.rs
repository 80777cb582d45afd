//! `kubectl pos status`: one line per role's Deployment, sorted by role, with replicas,
//! the `pos` container's image and the restarts of the pods its selector matches; none
//! found is an error.

use serde_json::{Value, json};

use super::{
    Kubeconfig,
    fake_api::FakeApi,
    fixtures::{deployment, pod},
    run,
};

const IMAGE: &str = "registry.example/pos:1.4.0";

/// The mesh in `pos-alpha` (inserted out of order, the edge with a sidecar first, the
/// store's only container not named `pos`) and an edge in `pos-beta` whose pods restart a
/// lot, which must not count.
fn mesh() -> Vec<Value> {
    let mut store = deployment("pos-alpha", "store", 2, 2, IMAGE);
    store["spec"]["template"]["spec"]["containers"][0]["name"] = json!("server");
    let mut edge = deployment("pos-alpha", "edge", 3, 2, IMAGE);
    edge["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "envoy", "image": "registry.example/envoy:1.30"},
        {"name": "pos", "image": IMAGE},
    ]);
    vec![
        deployment("pos-alpha", "trade", 2, 2, "registry.example/pos:1.3.9"),
        deployment("pos-alpha", "user", 2, 1, IMAGE),
        edge,
        store,
        deployment("pos-alpha", "settlement", 1, 0, IMAGE),
        pod("pos-alpha", "edge", "pos-edge-a", &[1, 2]),
        pod("pos-alpha", "edge", "pos-edge-b", &[3]),
        pod("pos-alpha", "trade", "pos-trade-a", &[0]),
        pod("pos-alpha", "settlement", "pos-settlement-a", &[4]),
        pod("pos-alpha", "user", "pos-user-a", &[0]),
        deployment("pos-beta", "edge", 1, 1, IMAGE),
        pod("pos-beta", "edge", "pos-edge-z", &[100]),
    ]
}

#[tokio::test]
async fn kubectl_status_lists_roles_sorted_with_images_and_restarts() {
    let api = FakeApi::start(mesh()).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(kubeconfig.command(), &["status"]).await;

    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "ROLE         DEPLOYMENT       DESIRED   READY   RESTARTS   IMAGE",
            "edge         pos-edge         3         2       6          registry.example/pos:1.4.0",
            "settlement   pos-settlement   1         0       4          registry.example/pos:1.4.0",
            "store        pos-store        2         2       0          registry.example/pos:1.4.0",
            "trade        pos-trade        2         2       0          registry.example/pos:1.3.9",
            "user         pos-user         2         1       0          registry.example/pos:1.4.0",
        ]
    );

    let requests = api.requests();
    assert_eq!(
        requests[0].path,
        "/apis/apps/v1/namespaces/pos-alpha/deployments"
    );
    assert_eq!(
        requests[0].query.get("labelSelector").map(String::as_str),
        Some("app.kubernetes.io/part-of=pos-mesh")
    );
    let mut pod_selectors: Vec<&str> = requests
        .iter()
        .filter(|request| request.path == "/api/v1/namespaces/pos-alpha/pods")
        .filter_map(|request| request.query.get("labelSelector").map(String::as_str))
        .collect();
    pod_selectors.sort();
    assert_eq!(
        pod_selectors,
        ["edge", "settlement", "store", "trade", "user"].map(|role| format!(
            "app.kubernetes.io/instance=pos,app.kubernetes.io/name=pos-{role}"
        ))
    );
    assert!(
        api.namespaces()
            .iter()
            .all(|namespace| namespace == "pos-alpha")
    );
    assert!(api.requests().iter().all(|request| request.method == "GET"));
}

#[tokio::test]
async fn kubectl_status_without_deployments_says_so_and_fails() {
    // The mesh is in pos-alpha only; pos-beta (context beta) has nothing of it.
    let api = FakeApi::start(vec![deployment("pos-alpha", "edge", 1, 1, IMAGE)]).await;
    let kubeconfig = Kubeconfig::write(&api.url, &api.url);

    let out = run(kubeconfig.command(), &["--context", "beta", "status"]).await;

    assert_eq!(out.code(), Some(1), "stdout: {}", out.stdout);
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);
    assert!(
        out.stderr.contains(
            "no pos-mesh Deployments in namespace `pos-beta` (label selector `app.kubernetes.io/part-of=pos-mesh`)"
        ),
        "stderr: {}",
        out.stderr
    );
}
