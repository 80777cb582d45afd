//! The command line as the registry builds it: each `pos serve <role>` takes only the
//! flags of the plumbing that role needs and its own, and the README's configuration
//! table names exactly the variables the binary reads.

use std::collections::BTreeSet;

use clap::Command;

/// Every `POS_*` variable of a command and its subcommands.
fn variables(command: &Command, found: &mut BTreeSet<String>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env() {
            found.insert(env.to_string_lossy().into_owned());
        }
    }
    for sub in command.get_subcommands() {
        variables(sub, found);
    }
}

#[test]
fn the_readme_configuration_table_matches_the_binary() {
    let mut in_binary = BTreeSet::new();
    variables(&pos::cli::command(), &mut in_binary);
    let readme = include_str!("../../README.md");
    let table = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    let mut in_readme = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| `POS_")) {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        for name in first_cell
            .split('`')
            .filter(|part| part.starts_with("POS_"))
        {
            in_readme.insert(name.to_string());
        }
    }
    // Variables of the test harness, not of the binary.
    for test_only in ["POS_TEST_DATABASE_URL", "POS_TEST_REDIS_URL"] {
        assert!(in_readme.remove(test_only), "{test_only} is documented");
    }
    let undocumented: Vec<_> = in_binary.difference(&in_readme).collect();
    let stale: Vec<_> = in_readme.difference(&in_binary).collect();
    assert!(
        undocumented.is_empty(),
        "not in the README: {undocumented:?}"
    );
    assert!(stale.is_empty(), "in the README but not read: {stale:?}");
}

/// The command with no environment variables behind its flags, so the settings of
/// whoever runs the tests cannot satisfy a required flag.
fn without_env(command: Command) -> Command {
    command
        .mut_args(|arg| arg.env(None::<&str>))
        .mut_subcommands(without_env)
}

fn parses(args: &[&str]) -> Result<(), String> {
    without_env(pos::cli::command())
        .try_get_matches_from(std::iter::once("pos").chain(args.iter().copied()))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn each_role_accepts_only_its_own_flags() {
    let db = ["--database-url", "sqlite://x.db"];
    let redis = ["--redis-url", "redis://127.0.0.1"];
    let peers = [
        "--store-addr",
        "http://s:8080",
        "--user-addr",
        "http://u:8080",
    ];
    parses(&[&["serve", "store"][..], &db].concat()).expect("store");
    parses(
        &[
            &[
                "serve",
                "user",
                "--signing-key-file",
                "k.pem",
                "--store-addr",
                "http://s",
            ][..],
            &db,
            &redis,
        ]
        .concat(),
    )
    .expect("user");
    parses(&[&["serve", "edge"][..], &redis, &peers].concat()).expect("edge");

    for (role, foreign) in [
        ("edge", "--database-url"),
        ("edge", "--kakao-client-id"),
        ("store", "--cors-allowed-origins"),
        ("store", "--rate-limit-per-minute"),
        ("store", "--previous-jwks-file"),
        ("user", "--jwks-file"),
        ("user", "--cors-allowed-origins"),
    ] {
        let args = [&["serve", role, foreign, "x"][..], &db, &redis, &peers].concat();
        let err = parses(&args).expect_err(&format!("{role} must refuse {foreign}"));
        assert!(err.contains(foreign), "{err}");
    }
    // What a role cannot run without is required by the command line itself.
    let err = parses(&[&["serve", "edge"][..], &peers].concat()).expect_err("edge without Redis");
    assert!(err.contains("--redis-url"), "{err}");
    let err = parses(
        &[
            &["serve", "user", "--store-addr", "http://s"][..],
            &db,
            &redis,
        ]
        .concat(),
    )
    .expect_err("user without a signing key");
    assert!(err.contains("--signing-key-file"), "{err}");
    let err = parses(&["serve", "store"]).expect_err("store without a database");
    assert!(err.contains("--database-url"), "{err}");
    // pos up takes every role's own flags.
    parses(&[
        "up",
        "--kakao-client-id",
        "x",
        "--rate-limit-per-minute",
        "5",
        "--demo",
    ])
    .expect("up");
    parses(&[
        "migrate",
        "--database-url",
        "sqlite://x.db",
        "--role",
        "store",
    ])
    .expect("migrate");
    assert!(
        parses(&[
            "migrate",
            "--database-url",
            "sqlite://x.db",
            "--role",
            "edge"
        ])
        .is_err()
    );
}

/// The README's run command, `cargo run --release -- up --demo`, needs cargo to know
/// which of the package's binaries is the system.
#[test]
fn cargo_run_runs_pos() {
    let manifest = include_str!("../../Cargo.toml");
    let package = manifest
        .split("\n[package]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [package] table");
    let binaries = manifest.matches("[[bin]]").count();
    assert!(
        binaries <= 1
            || package
                .lines()
                .any(|line| line.trim() == r#"default-run = "pos""#),
        "{binaries} binaries and no default-run = \"pos\" in [package]"
    );
    assert!(
        include_str!("../../README.md").contains("cargo run --release -- up --demo"),
        "the README's run command is the one this test is about"
    );
}

#[tokio::test]
async fn pos_jwks_prints_the_public_half_of_key_files() {
    let files = tempfile::tempdir().expect("dir");
    let (_, key_file, jwks_file) = crate::support::key_files(files.path());
    let mut jwks = crate::support::process::pos();
    jwks.arg("jwks").arg(&key_file);
    let (status, stdout, stderr) = crate::support::process::output(jwks).await;
    assert!(status.success(), "{stderr}");
    let printed: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwks_file).expect("jwks")).expect("JSON");
    assert_eq!(printed, expected);
    assert!(!stdout.contains("\"d\""), "no private part: {stdout}");

    let mut missing = crate::support::process::pos();
    missing.args(["jwks", "/nonexistent/key.pem"]);
    let (status, _, stderr) = crate::support::process::output(missing).await;
    assert!(!status.success());
    assert!(stderr.contains("/nonexistent/key.pem"), "{stderr}");
}
