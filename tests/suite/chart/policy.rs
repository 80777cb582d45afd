//! What every rendering of the chart must hold: probes, resources and a locked-down
//! securityContext on every container; no internal Service reachable from outside the
//! cluster; NetworkPolicies that admit outside traffic to the edge only; selectors that
//! select their pods; and only `POS_*` variables the binary reads, with every one a
//! role requires.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{containers, every_rendering, kind, matches, name, pod_template, pods};

/// A container's or its pod's setting: the container's own wins.
fn security<'a>(pod: &'a Value, container: &'a Value, key: &str) -> &'a Value {
    match &container["securityContext"][key] {
        Value::Null => &pod["spec"]["securityContext"][key],
        own => own,
    }
}

#[test]
fn every_container_is_locked_down_and_sized() {
    for (case, objects) in every_rendering() {
        for (object, pod) in pods(&objects) {
            let owner = format!("{case}: {} {}", object["kind"], name(object));
            assert_eq!(
                pod["spec"]["automountServiceAccountToken"], false,
                "{owner}: no role calls the Kubernetes API"
            );
            for container in containers(pod) {
                let at = format!("{owner}, container {}", container["name"]);
                assert_eq!(security(pod, container, "runAsNonRoot"), true, "{at}");
                assert_eq!(
                    container["securityContext"]["readOnlyRootFilesystem"], true,
                    "{at}"
                );
                assert_eq!(
                    container["securityContext"]["allowPrivilegeEscalation"], false,
                    "{at}"
                );
                assert_eq!(
                    container["securityContext"]["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{at}"
                );
                assert_eq!(
                    security(pod, container, "seccompProfile")["type"],
                    "RuntimeDefault",
                    "{at}"
                );
                for bound in ["requests", "limits"] {
                    for resource in ["cpu", "memory"] {
                        assert!(
                            container["resources"][bound][resource].is_string(),
                            "{at}: no {bound}.{resource}"
                        );
                    }
                }
            }
        }
    }
}

/// What each role's health server registers: its own services and `liveness`.
fn registered_health_names(role: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = if role == "edge" {
        pos_proto::PUBLIC_SERVICES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        pos::registry::role(role)
            .unwrap_or_else(|| panic!("a role called {role}"))
            .services()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    names.insert(pos_common::introspection::LIVENESS.to_string());
    names
}

#[test]
fn every_role_is_probed_on_grpc_health_and_drains_before_it_stops() {
    for (case, objects) in every_rendering() {
        let deployments = kind(&objects, "Deployment");
        assert!(!deployments.is_empty(), "{case}: no Deployment");
        for deployment in deployments {
            let role = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
                .as_str()
                .expect("a component label");
            let pod = &deployment["spec"]["template"];
            let registered = registered_health_names(role);
            for container in containers(pod) {
                let at = format!(
                    "{case}: {} container {}",
                    name(deployment),
                    container["name"]
                );
                let served = container["ports"]
                    .as_array()
                    .and_then(|ports| ports.iter().find(|p| p["name"] == "grpc"))
                    .map(|port| port["containerPort"].clone())
                    .unwrap_or_else(|| panic!("{at}: a port named grpc"));
                for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                    let grpc = &container[probe]["grpc"];
                    assert!(
                        grpc["port"].is_u64(),
                        "{at}: {probe} on a numeric gRPC port"
                    );
                    assert_eq!(
                        grpc["port"], served,
                        "{at}: {probe} asks the port it serves"
                    );
                    let service = grpc["service"].as_str().unwrap_or_default();
                    assert!(
                        registered.contains(service),
                        "{at}: {probe} asks {service:?}, which the {role} role does not \
                         register ({registered:?})"
                    );
                }
                assert_eq!(
                    container["livenessProbe"]["grpc"]["service"], "liveness",
                    "{at}: liveness must not follow the database (a restart would not help)"
                );
                assert_ne!(
                    container["readinessProbe"]["grpc"]["service"], "liveness",
                    "{at}: readiness follows the role's dependencies"
                );
                let sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{at}: a preStop sleep"));
                let seconds = |variable: &str| -> u64 {
                    env_value(&objects, container, variable)
                        .parse()
                        .expect("a number of seconds")
                };
                let drain = seconds("POS_SHUTDOWN_DRAIN");
                let grace = seconds("POS_SHUTDOWN_GRACE_SECS");
                let termination = pod["spec"]["terminationGracePeriodSeconds"]
                    .as_u64()
                    .unwrap_or(30);
                assert!(
                    termination > sleep + drain + grace,
                    "{at}: {termination} s of termination grace must outlast the preStop \
                     sleep ({sleep} s), the role's drain ({drain} s) and its grace for calls \
                     in flight ({grace} s)"
                );
            }
        }
    }
}

/// The value `container` gets for `variable`, following a ConfigMap reference.
fn env_value(objects: &[Value], container: &Value, variable: &str) -> String {
    let entry = container["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == variable))
        .unwrap_or_else(|| panic!("{} has no {variable}", container["name"]));
    if let Some(value) = entry["value"].as_str() {
        return value.to_string();
    }
    let reference = &entry["valueFrom"]["configMapKeyRef"];
    let map = kind(objects, "ConfigMap")
        .into_iter()
        .find(|m| name(m) == reference["name"])
        .unwrap_or_else(|| panic!("{variable}: no ConfigMap {}", reference["name"]));
    map["data"][reference["key"].as_str().unwrap_or_default()]
        .as_str()
        .unwrap_or_else(|| panic!("{variable}: no key {}", reference["key"]))
        .to_string()
}

#[test]
fn only_the_edge_is_reachable_from_outside() {
    for (case, objects) in every_rendering() {
        for service in kind(&objects, "Service") {
            let role = &service["metadata"]["labels"]["app.kubernetes.io/component"];
            assert_eq!(
                service["spec"]["type"],
                "ClusterIP",
                "{case}: Service {} is not ClusterIP",
                name(service)
            );
            if role != "edge" {
                assert_eq!(
                    service["spec"]["clusterIP"],
                    "None",
                    "{case}: internal Service {} is headless (pod addresses, for \
                     client-side balancing)",
                    name(service)
                );
            }
        }
        let policies = kind(&objects, "NetworkPolicy");
        assert!(!policies.is_empty(), "{case}: no NetworkPolicy");
        for policy in &policies {
            let selector = &policy["spec"]["podSelector"]["matchLabels"];
            for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
                let from = rule["from"].as_array();
                let outside = from.is_none_or(|peers| {
                    peers.iter().any(|peer| {
                        !peer["ipBlock"].is_null() || !peer["namespaceSelector"].is_null()
                    })
                });
                // Scrapers may reach a role's metrics port, and nothing else of it.
                let metrics_only = rule["ports"]
                    .as_array()
                    .is_some_and(|ports| ports.len() == 1 && ports[0]["port"] == "metrics");
                if outside && !metrics_only {
                    assert_eq!(
                        selector["app.kubernetes.io/component"],
                        "edge",
                        "{case}: NetworkPolicy {} admits outside traffic to a role other \
                         than the edge",
                        name(policy)
                    );
                }
            }
        }
        // Every pod is under some policy: nothing is open by omission.
        for (object, pod) in pods(&objects) {
            let labels = &pod["metadata"]["labels"];
            let covered = policies.iter().any(|policy| {
                let selector = &policy["spec"]["podSelector"];
                matches(&selector["matchLabels"], labels)
                    || selector["matchExpressions"].as_array().is_some_and(|all| {
                        all.iter().all(|expression| {
                            expression["operator"] == "In"
                                && expression["values"].as_array().is_some_and(|values| {
                                    values.contains(
                                        &labels[expression["key"].as_str().unwrap_or_default()],
                                    )
                                })
                        })
                    })
            });
            assert!(
                covered,
                "{case}: {} {} has no NetworkPolicy",
                object["kind"],
                name(object)
            );
        }
    }
}

#[test]
fn every_selector_selects_its_pods() {
    for (case, objects) in every_rendering() {
        let deployments = kind(&objects, "Deployment");
        for deployment in &deployments {
            let labels = &deployment["spec"]["template"]["metadata"]["labels"];
            assert!(
                matches(&deployment["spec"]["selector"]["matchLabels"], labels),
                "{case}: Deployment {} does not select its own pods",
                name(deployment)
            );
        }
        let selected = |selector: &Value| -> Vec<&str> {
            deployments
                .iter()
                .filter(|d| matches(selector, &d["spec"]["template"]["metadata"]["labels"]))
                .map(|d| name(d))
                .collect()
        };
        for service in kind(&objects, "Service") {
            assert_eq!(
                selected(&service["spec"]["selector"]).len(),
                1,
                "{case}: Service {} selects one role's pods",
                name(service)
            );
        }
        for budget in kind(&objects, "PodDisruptionBudget") {
            assert_eq!(
                selected(&budget["spec"]["selector"]["matchLabels"]).len(),
                1,
                "{case}: PodDisruptionBudget {}",
                name(budget)
            );
        }
        for policy in kind(&objects, "NetworkPolicy") {
            if let Some(labels) = policy["spec"]["podSelector"]["matchLabels"].as_object() {
                assert_eq!(
                    selected(&Value::Object(labels.clone())).len(),
                    1,
                    "{case}: NetworkPolicy {}",
                    name(policy)
                );
            }
        }
        for autoscaler in kind(&objects, "HorizontalPodAutoscaler") {
            let target = &autoscaler["spec"]["scaleTargetRef"];
            let deployment = deployments
                .iter()
                .find(|d| name(d) == target["name"])
                .unwrap_or_else(|| panic!("{case}: HPA {} scales nothing", name(autoscaler)));
            assert!(
                deployment["spec"]["replicas"].is_null(),
                "{case}: {} has replicas set as well as an HPA (every rollout would reset it)",
                name(deployment)
            );
            let role = &deployment["metadata"]["labels"]["app.kubernetes.io/component"];
            assert!(role == "edge" || role == "trade", "{case}: HPA on {role}");
        }
        for cron in kind(&objects, "CronJob") {
            let pod = pod_template(cron).expect("a pod");
            assert!(
                matches(&cron["metadata"]["labels"], &pod["metadata"]["labels"]),
                "{case}: CronJob {}'s pods carry its labels (kubectl pos finds them by them)",
                name(cron)
            );
        }
    }
}

/// The `pos` subcommand a container runs (its args, flags skipped), and the `POS_*`
/// variables it reads, with whether each is required.
fn accepted_variables(args: &[String]) -> (String, Vec<(String, bool)>) {
    let mut command = pos::cli::command();
    let mut path = Vec::new();
    let mut variables: Vec<(String, bool)> = Vec::new();
    let mut collect = |command: &clap::Command| {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                variables.push((env.to_string_lossy().into_owned(), arg.is_required_set()));
            }
        }
    };
    collect(&command);
    for word in args.iter().filter(|a| !a.starts_with('-')) {
        let Some(sub) = command.find_subcommand(word).cloned() else {
            break;
        };
        path.push(word.clone());
        collect(&sub);
        command = sub;
    }
    (path.join(" "), variables)
}

#[test]
fn every_variable_is_one_the_binary_reads_and_every_required_one_is_set() {
    for (case, objects) in every_rendering() {
        let services: BTreeSet<&str> = kind(&objects, "Service").into_iter().map(name).collect();
        for (object, pod) in pods(&objects) {
            for container in containers(pod) {
                let args: Vec<String> = container["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .map(|a| a.as_str().expect("a string").to_string())
                    .collect();
                let (subcommand, accepted) = accepted_variables(&args);
                let at = format!(
                    "{case}: {} {} (`pos {subcommand}`)",
                    object["kind"],
                    name(object)
                );
                let given: Vec<&str> = container["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["name"].as_str())
                    .collect();
                for variable in given.iter().filter(|v| v.starts_with("POS_")) {
                    assert!(
                        accepted.iter().any(|(name, _)| name == variable),
                        "{at} sets {variable}, which it does not read"
                    );
                }
                for (variable, required) in &accepted {
                    assert!(
                        !required || given.contains(&variable.as_str()),
                        "{at} lacks {variable}, which it requires"
                    );
                }
                // Addresses of other roles name a Service of this release.
                for entry in container["env"].as_array().into_iter().flatten() {
                    let variable = entry["name"].as_str().unwrap_or_default();
                    if variable.ends_with("_ADDR") {
                        let value = entry["value"].as_str().unwrap_or_default();
                        let host = value
                            .trim_start_matches("http://")
                            .split(':')
                            .next()
                            .unwrap_or_default();
                        assert!(
                            services.contains(host),
                            "{at}: {variable}={value} is no Service"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_migration_hook_runs_first_with_what_it_needs() {
    for (case, objects) in every_rendering() {
        let hooks: Vec<&Value> = objects
            .iter()
            .filter(|o| !o["metadata"]["annotations"]["helm.sh/hook"].is_null())
            .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/component"] == "migrations")
            .collect();
        let job = hooks
            .iter()
            .find(|o| o["kind"] == "Job")
            .unwrap_or_else(|| panic!("{case}: no migration Job"));
        let annotations = &job["metadata"]["annotations"];
        assert_eq!(
            annotations["helm.sh/hook"], "pre-install,pre-upgrade",
            "{case}"
        );
        assert_eq!(
            annotations["helm.sh/hook-delete-policy"], "before-hook-creation",
            "{case}: its logs survive until the next run"
        );
        assert!(job["spec"]["backoffLimit"].is_u64(), "{case}");
        let pod = &job["spec"]["template"];
        assert_eq!(
            containers(pod)[0]["args"],
            serde_json::json!(["migrate", "--role", "all"])
        );
        let weight = |o: &Value| -> i64 {
            o["metadata"]["annotations"]["helm.sh/hook-weight"]
                .as_str()
                .and_then(|w| w.parse().ok())
                .unwrap_or(0)
        };
        // What the Job uses that is itself a hook must come before it.
        let account = pod["spec"]["serviceAccountName"]
            .as_str()
            .expect("an account");
        let secrets: Vec<&str> = containers(pod)[0]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str())
            .collect();
        let mut needed = vec![("ServiceAccount", account)];
        needed.extend(secrets.iter().map(|s| ("Secret", *s)));
        for (needed_kind, needed_name) in needed {
            match hooks
                .iter()
                .find(|o| o["kind"] == needed_kind && name(o) == needed_name)
            {
                Some(hook) => assert!(
                    weight(hook) < weight(job),
                    "{case}: {needed_kind} {needed_name} is created before the Job"
                ),
                // Not a hook: it must be the operator's own Secret, not a release object
                // (those do not exist yet when pre-install hooks run).
                None => assert!(
                    !objects
                        .iter()
                        .any(|o| o["kind"] == needed_kind && name(o) == needed_name),
                    "{case}: the migration Job needs {needed_kind} {needed_name}, which the \
                     release creates only after its hooks ran"
                ),
            }
        }
    }
}

#[test]
fn names_fit_kubernetes_limits_whatever_the_release_is_called() {
    let long = "restaurant-pos-production-europe-west-1";
    let output = std::process::Command::new(super::helm())
        .args(["template", long])
        .arg(super::chart_dir())
        .args(["--namespace", super::NAMESPACE, "--kube-version", "1.30.0"])
        .output()
        .expect("helm");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let objects = super::parse(&String::from_utf8_lossy(&output.stdout));
    assert!(objects.len() > 20, "the chart rendered");
    for object in &objects {
        // A CronJob's Jobs append 11 characters, and a Job's name is a label value (63).
        let limit = if object["kind"] == "CronJob" { 52 } else { 63 };
        assert!(
            name(object).len() <= limit,
            "{} {} is longer than {limit}",
            object["kind"],
            name(object)
        );
    }
}

#[test]
fn with_service_keys_the_signing_key_stays_with_the_roles_that_sign() {
    let production = super::cases()
        .into_iter()
        .find(|case| case.name == "production")
        .expect("the production example");
    let objects = super::render(&production, "1.30.0", &[]);
    for (object, pod) in pods(&objects) {
        let component = object["metadata"]["labels"]["app.kubernetes.io/component"]
            .as_str()
            .unwrap_or_default();
        let mounted: Vec<&str> = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|volume| volume["secret"]["items"].as_array().into_iter().flatten())
            .filter_map(|item| item["key"].as_str())
            .collect();
        let signs = component == "user" || component == "store";
        assert_eq!(
            mounted.contains(&"signing-key.pem"),
            signs,
            "{} {}: {mounted:?}",
            object["kind"],
            name(object)
        );
        if object["kind"] == "Deployment" || object["kind"] == "CronJob" {
            assert!(
                mounted.contains(&"service-key.pem"),
                "{}: its service key",
                name(object)
            );
        }
    }
}

#[test]
fn every_role_is_scraped_on_its_metrics_port() {
    let default = super::Case {
        name: "default".into(),
        values: None,
    };
    let objects = super::render(&default, "1.30.0", &["metrics.serviceMonitor.enabled=true"]);
    for deployment in kind(&objects, "Deployment") {
        let pod = &deployment["spec"]["template"];
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(
            annotations["prometheus.io/scrape"],
            "true",
            "{}",
            name(deployment)
        );
        assert_eq!(annotations["prometheus.io/path"], "/metrics");
        let container = containers(pod)[0];
        let port = container["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == "metrics"))
            .unwrap_or_else(|| panic!("{}: a metrics port", name(deployment)));
        assert_eq!(
            annotations["prometheus.io/port"],
            port["containerPort"].to_string(),
            "{}",
            name(deployment)
        );
        assert_eq!(
            env_value(&objects, container, "POS_METRICS_LISTEN"),
            format!("0.0.0.0:{}", port["containerPort"]),
            "{}",
            name(deployment)
        );
    }
    let monitors = kind(&objects, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let selector = &monitors[0]["spec"]["selector"]["matchLabels"];
    let scraped: Vec<&Value> = kind(&objects, "Service")
        .into_iter()
        .filter(|service| matches(selector, &service["metadata"]["labels"]))
        .collect();
    assert_eq!(scraped.len(), kind(&objects, "Deployment").len());
    for service in scraped {
        assert!(
            service["spec"]["ports"]
                .as_array()
                .is_some_and(|ports| ports.iter().any(|p| p["name"] == "metrics")),
            "{} has a metrics port",
            name(service)
        );
    }
}
