//! The connection to the cluster as kubectl makes it: `--kubeconfig`, else `KUBECONFIG`
//! (its files merged), else ~/.kube/config, else the pod's service account; the context
//! from `--context`, else the current-context; the namespace from `-n`, else the
//! context's, else `default`.

use anyhow::{Context as _, Result};
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::cli::Connection;

/// A client and the namespace every request of this command goes to.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
}

impl Cluster {
    pub async fn connect(connection: &Connection) -> Result<Self> {
        let options = KubeConfigOptions {
            context: connection.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match (&connection.kubeconfig, &connection.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("loading kubeconfig {}", path.display()))?
            }
            (None, Some(context)) => Config::from_kubeconfig(&options)
                .await
                .with_context(|| format!("loading context `{context}` from the kubeconfig"))?,
            // No flag: the kubeconfig, or in a pod its service account, as kubectl.
            (None, None) => Config::infer().await.context(
                "finding a kubeconfig (KUBECONFIG, ~/.kube/config) or a pod's service account",
            )?,
        };
        let namespace = connection
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).context("building the Kubernetes client")?;
        Ok(Self { client, namespace })
    }
}
