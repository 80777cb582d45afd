//! A fake Kubernetes API server on loopback for `kubectl-pos`: it serves the canned
//! Deployments, Pods, CronJobs and Jobs it holds for the list and get paths kube asks
//! (filtered by namespace and equality label selectors), stores a POSTed Job and returns
//! it as created, can make a Job finish after some polls, and records every request.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: Option<Value>,
}

/// How a Job followed with `--wait` ends: after `polls` GETs of it, with this condition.
#[derive(Debug, Clone, Copy)]
pub enum Finish {
    Complete { polls: usize },
    Failed { polls: usize },
}

#[derive(Default)]
struct Books {
    objects: Vec<Value>,
    requests: Vec<Recorded>,
    finish: Option<Finish>,
    gets: usize,
}

#[derive(Clone)]
pub struct FakeApi {
    pub url: String,
    books: Arc<Mutex<Books>>,
}

impl FakeApi {
    /// A server holding `objects` (each with `kind` and `metadata.namespace`).
    pub async fn start(objects: Vec<Value>) -> Self {
        let books = Arc::new(Mutex::new(Books {
            objects,
            ..Books::default()
        }));
        let app = Router::new().fallback(handle).with_state(books.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API server");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            books,
        }
    }

    pub fn finish_jobs(&self, finish: Finish) {
        self.books.lock().expect("lock").finish = Some(finish);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.books.lock().expect("lock").requests.clone()
    }

    /// The bodies of every POST, in order.
    pub fn posted(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == "POST")
            .map(|request| request.body.expect("a POST has a body"))
            .collect()
    }

    /// The namespaces of every request's path (`/…/namespaces/<ns>/…`).
    pub fn namespaces(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|request| parse_path(&request.path).map_or_else(String::new, |p| p.namespace))
            .collect()
    }
}

/// What a path names: `/api/v1/namespaces/ns/pods` or `/apis/batch/v1/namespaces/ns/jobs/x`.
struct ResourcePath {
    api_version: String,
    namespace: String,
    kind: &'static str,
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<ResourcePath> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let at = segments
        .iter()
        .position(|segment| *segment == "namespaces")?;
    let api_version = match &segments[..at] {
        ["api", version] => (*version).to_string(),
        ["apis", group, version] => format!("{group}/{version}"),
        _ => return None,
    };
    let namespace = segments.get(at + 1)?.to_string();
    let kind = match *segments.get(at + 2)? {
        "pods" => "Pod",
        "deployments" => "Deployment",
        "cronjobs" => "CronJob",
        "jobs" => "Job",
        _ => return None,
    };
    let name = segments.get(at + 3).map(|name| (*name).to_string());
    Some(ResourcePath {
        api_version,
        namespace,
        kind,
        name,
    })
}

/// Whether `labels` satisfies an equality selector (`a=b,c==d,e!=f`).
fn selects(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .filter(|term| !term.is_empty())
        .all(|term| {
            let label = |key: &str| labels.get(key.trim()).and_then(Value::as_str);
            if let Some((key, value)) = term.split_once("!=") {
                label(key) != Some(value.trim())
            } else if let Some((key, value)) = term.split_once('=') {
                label(key) == Some(value.trim_start_matches('=').trim())
            } else {
                panic!("the fake API understands equality selectors only, not `{term}`")
            }
        })
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, Json(body)).into_response()
}

async fn handle(
    State(books): State<Arc<Mutex<Books>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let body =
        (!body.is_empty()).then(|| serde_json::from_slice::<Value>(&body).expect("a JSON body"));
    let mut books = books.lock().expect("lock");
    books.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: query.clone(),
        body: body.clone(),
    });
    let Some(path) = parse_path(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route {}", uri.path()),
        );
    };
    let in_scope = |object: &Value| {
        object["kind"] == path.kind && object["metadata"]["namespace"] == path.namespace.as_str()
    };

    match (method, &path.name) {
        (Method::GET, None) => {
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> = books
                .objects
                .iter()
                .filter(|object| {
                    in_scope(object) && selects(&selector, &object["metadata"]["labels"])
                })
                .cloned()
                .collect();
            Json(json!({
                "apiVersion": path.api_version,
                "kind": format!("{}List", path.kind),
                "metadata": {"resourceVersion": "1"},
                "items": items,
            }))
            .into_response()
        }
        (Method::GET, Some(name)) => {
            books.gets += 1;
            let (gets, finish) = (books.gets, books.finish);
            let Some(object) = books
                .objects
                .iter_mut()
                .find(|object| in_scope(object) && object["metadata"]["name"] == name.as_str())
            else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} {name} not found", path.kind),
                );
            };
            if path.kind == "Job" {
                finish_job(object, finish, gets);
            }
            Json(object.clone()).into_response()
        }
        (Method::POST, None) if path.kind == "Job" => {
            let mut job = body.unwrap_or(Value::Null);
            let name = job["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if books
                .objects
                .iter()
                .any(|object| in_scope(object) && object["metadata"]["name"] == name.as_str())
            {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("jobs {name} already exists"),
                );
            }
            job["metadata"]["namespace"] = json!(path.namespace);
            job["metadata"]["uid"] = json!(format!("uid-{name}"));
            job["metadata"]["creationTimestamp"] = json!("2025-03-01T00:00:00Z");
            job["status"] = json!({});
            books.objects.push(job.clone());
            (StatusCode::CREATED, Json(job)).into_response()
        }
        (method, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the fake API does not serve {method} {}", uri.path()),
        ),
    }
}

/// Makes a Job run at 00:00:00 and, once it has been read `polls` times, finish: complete
/// at 00:01:05 or fail at 00:00:42.
fn finish_job(job: &mut Value, finish: Option<Finish>, gets: usize) {
    let Some(finish) = finish else { return };
    job["status"]["startTime"] = json!("2025-03-01T00:00:00Z");
    job["status"]["active"] = json!(1);
    match finish {
        Finish::Complete { polls } if gets >= polls => {
            job["status"] = json!({
                "startTime": "2025-03-01T00:00:00Z",
                "completionTime": "2025-03-01T00:01:05Z",
                "succeeded": 1,
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2025-03-01T00:01:05Z"},
                    {"type": "Complete", "status": "True", "lastTransitionTime": "2025-03-01T00:01:05Z"},
                ],
            });
        }
        Finish::Failed { polls } if gets >= polls => {
            job["status"] = json!({
                "startTime": "2025-03-01T00:00:00Z",
                "failed": 1,
                "conditions": [
                    {"type": "FailureTarget", "status": "True", "lastTransitionTime": "2025-03-01T00:00:42Z"},
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit",
                     "lastTransitionTime": "2025-03-01T00:00:42Z"},
                ],
            });
        }
        _ => {}
    }
}
