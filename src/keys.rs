//! `pos jwks`: the public half of Ed25519 key files as a JWKS, the form
//! `POS_SERVICE_JWKS_FILE` and `POS_JWKS_FILE` take, so an operator who made service
//! keys with openssl can give every role the keys that verify them.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::{Args, Command, FromArgMatches};
use pos_common::auth::{SigningKey, TokenIssuer};

#[derive(Debug, Args)]
struct JwksFlags {
    /// PKCS#8 PEM Ed25519 private key files (e.g. from `openssl genpkey -algorithm
    /// ed25519`); the output holds each one's public key.
    #[arg(required = true, value_name = "KEY_FILE")]
    key_files: Vec<PathBuf>,
}

pub fn command() -> Command {
    JwksFlags::augment_args(Command::new("jwks"))
        .about("Prints the public keys of Ed25519 key files as a JWKS ({\"keys\":[…]})")
        .long_about(None)
}

pub fn run(matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let flags = JwksFlags::from_arg_matches(matches)?;
    let mut keys = Vec::new();
    for path in &flags.key_files {
        let key = SigningKey::from_file(path)
            .with_context(|| format!("cannot use the key in {}", path.display()))?;
        // Issuer and audience do not enter the published key.
        let issuer = TokenIssuer::new(Arc::new(key), "", "");
        keys.extend(issuer.jwks().keys);
    }
    let set = serde_json::json!({ "keys": keys });
    println!("{}", serde_json::to_string_pretty(&set)?);
    Ok(())
}
