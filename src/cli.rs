//! The command line: one binary, a subcommand per role (like `thanos query|store|...`),
//! all built from the role registry.

use clap::{Arg, ArgMatches, Command, builder::PossibleValuesParser};
use pos_common::storage::Database;

use crate::{
    flags,
    registry::{self, ROLES},
    serve, up,
};

/// `pos`: `up`, `serve <role>`, `migrate`, `batch`, `health` and `jwks`.
pub fn command() -> Command {
    let serve = Command::new("serve")
        .about("Runs one role, for Kubernetes")
        .subcommand_required(true)
        .subcommands(ROLES.iter().map(|role| flags::serve_command(*role)));
    let with_tables: Vec<&'static str> = ROLES
        .iter()
        .filter(|role| role.needs().migrations.is_some())
        .map(|role| role.name())
        .chain(["all"])
        .collect();
    let migrate = Command::new("migrate")
        .about("Applies database migrations and exits")
        .arg(
            Arg::new("database_url")
                .long("database-url")
                .env("POS_DATABASE_URL")
                .required(true)
                .help("Database URL: postgres://user@host/db or sqlite://path/file.db"),
        )
        .arg(
            Arg::new("role")
                .long("role")
                .alias("service")
                .default_value("all")
                .value_parser(PossibleValuesParser::new(with_tables))
                .help("Whose tables to migrate (all: every role, in one shared database)"),
        );
    Command::new("pos")
        .about("POS settlement mesh: one binary, many roles")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg(
            Arg::new("log_format")
                .long("log-format")
                .env("POS_LOG_FORMAT")
                .global(true)
                .default_value("text")
                .value_parser(["text", "json"])
                .help("Log line format: text for people, json for log collectors"),
        )
        .subcommand(up::command())
        .subcommand(serve)
        .subcommand(migrate)
        .subcommand(crate::batch::command())
        .subcommand(crate::health::command())
        .subcommand(crate::keys::command())
}

/// Whether logs should be JSON lines.
pub fn json_logs(matches: &ArgMatches) -> bool {
    matches
        .get_one::<String>("log_format")
        .is_some_and(|format| format == "json")
}

pub async fn run(matches: ArgMatches) -> anyhow::Result<()> {
    match matches.subcommand() {
        Some(("up", up)) => up::run(up).await,
        Some(("serve", serve)) => {
            let Some((name, matches)) = serve.subcommand() else {
                anyhow::bail!("pos serve needs a role");
            };
            let role =
                registry::role(name).ok_or_else(|| anyhow::anyhow!("no role called {name}"))?;
            let flags = flags::parse_serve(role, matches)?;
            serve::serve(role, flags, matches).await
        }
        Some(("migrate", migrate)) => run_migrate(migrate).await,
        Some(("batch", batch)) => crate::batch::run(batch).await,
        Some(("health", health)) => crate::health::run(health).await,
        Some(("jwks", jwks)) => crate::keys::run(jwks),
        _ => anyhow::bail!("unknown command; see pos --help"),
    }
}

async fn run_migrate(matches: &ArgMatches) -> anyhow::Result<()> {
    let url = matches
        .get_one::<String>("database_url")
        .ok_or_else(|| anyhow::anyhow!("--database-url is required"))?;
    let which = matches
        .get_one::<String>("role")
        .map_or("all", String::as_str);
    let database = Database::connect(url).await?;
    for role in ROLES {
        if let Some(migrations) = role.needs().migrations
            && (which == "all" || which == role.name())
        {
            database.migrate(migrations).await?;
        }
    }
    println!("migrations applied");
    database.close().await;
    Ok(())
}
