//! The `switchboard` binary: command-line parsing only. Everything it runs
//! lives in the library (`startup`, `store`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use switchboard::error::AppError;
use switchboard::identity::secret_box::SecretBox;
use switchboard::identity::{accounts, master_key};
use switchboard::settings::Settings;
use switchboard::startup::{self, Application, StartupError};
use switchboard::store::bench::{self, BenchMode, BenchOptions};
use switchboard::store::{connection, migrations, GroupCommitConfig, Store};
use switchboard::telemetry;

/// Switchboard lets AI agents hand hard cases to human experts, and hosts
/// those agents for many tenants.
///
/// Settings come from built-in defaults, then `switchboard.toml` (or --config),
/// then SWITCHBOARD_* environment variables; the README's "Operating" section
/// lists them all.
#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about,
    long_about,
    after_long_help = "\
Most used settings (environment variables):
  SWITCHBOARD_BIND            listen address (127.0.0.1:8080)
  SWITCHBOARD_DATABASE_URL    sqlite://PATH (sqlite://data/switchboard.db) or postgres://...
  SWITCHBOARD_DATA_DIR        master key, tenant logs and runtime directories (data)
  SWITCHBOARD_BOOTSTRAP_ADMIN email of a super-admin created at start if missing
  SWITCHBOARD_MAIL            log | file:DIR | smtp://host:port: where one-time codes go
  SWITCHBOARD_LOG             tracing filter (info); SWITCHBOARD_LOG_FORMAT=json for JSON lines

Examples:
  switchboard                                   serve on SQLite in ./data
  SWITCHBOARD_DATABASE_URL=postgres://u:p@db/sb switchboard serve
  switchboard admin token --email ops@example.com

Once serving: /healthz, /readyz, /metrics (Prometheus), /openapi.json and /docs."
)]
struct Cli {
    /// Configuration file (default: ./switchboard.toml when present).
    #[arg(long, global = true, value_name = "PATH", env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the three APIs and the operator endpoints (the default).
    ///
    /// Listens at once: /healthz answers while the process serves, /readyz
    /// answers 503 until the database is reachable, migrations are applied and
    /// the actors are rebuilt from it (an unreachable database is retried with
    /// back-off). SIGTERM or SIGINT stops accepting, lets in-flight requests
    /// finish within SWITCHBOARD_SHUTDOWN_TIMEOUT, flushes the Store and exits 0.
    Serve,
    /// Apply pending database migrations, then exit.
    ///
    /// `serve` applies them too; this is for deployments that migrate first.
    Migrate,
    /// Measure durable writes per second on the configured database.
    ///
    /// Group commit through the Store vs one transaction per write, with
    /// --senders concurrent senders; it writes rows of its own and deletes them
    /// at the end unless --keep.
    BenchStore(BenchArgs),
    /// Operator tasks on the configured database (keys, tokens, secrets).
    ///
    /// Each runs with the server's settings (same config file and
    /// environment) against its database, and prints one value on stdout.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run one tenant's agent runtime (the `process` runtime's child). The
    /// server starts it; it listens on a loopback port, prints that port as
    /// its first line, and exits when its standard input closes.
    #[command(hide = true)]
    Runtime {
        /// The tenant whose agents it runs.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Print a new Escalation API key of the operator tenant.
    ///
    /// A `cero_...` key of the operator tenant, whose experts serve every
    /// tenant and whose plan has no escalation limits.
    OperatorKey,
    /// Make a Cerebral and an Agent API key in the operator tenant.
    ///
    /// An active Cerebral (offline provider, no SOPs) and a new Agent API key
    /// (`sk_live_...`) for it, printed as one JSON line `{"cerebral_id",
    /// "api_key"}`. The operator tenant's plan has no request limits or token
    /// budget, so this is what `switchboard-load message` drives.
    AgentKey {
        /// The Cerebral's name.
        #[arg(long, default_value = "load test")]
        name: String,
    },
    /// Print a Platform API token (JWT) for an existing user.
    ///
    /// The same token the one-time-code sign-in gives, e.g. for the bootstrap
    /// admin, for scripts and `switchboard-load --token`. It lasts
    /// SWITCHBOARD_JWT_TTL and logout revokes it.
    Token {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// Print the secret that signs a tenant's `callback_url` deliveries.
    ///
    /// The tenant's `webhook_secret` (`whsec_...`), made if it has none yet.
    WebhookSecret {
        /// The tenant's id; the operator tenant's when omitted.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Concurrent senders.
    #[arg(long, default_value_t = 64)]
    senders: usize,
    /// Writes per mode.
    #[arg(long, default_value_t = 20_000)]
    writes: u64,
    #[arg(long, value_enum, default_value_t = BenchMode::Both)]
    mode: BenchMode,
    /// Keep the bench's rows instead of deleting them at the end.
    #[arg(long)]
    keep: bool,
    /// Print `ack <id>` for every write as soon as it is durable.
    #[arg(long)]
    print_acks: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings);
    let system = actix_web::rt::System::new();
    let outcome = system.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(&settings),
            Command::BenchStore(args) => bench_store(&settings, args).await,
            Command::Admin(AdminCommand::OperatorKey) => operator_key(&settings).await,
            Command::Admin(AdminCommand::WebhookSecret { tenant }) => webhook_secret(&settings, tenant).await,
            Command::Admin(AdminCommand::AgentKey { name }) => agent_key(&settings, &name).await,
            Command::Admin(AdminCommand::Token { email }) => token(&settings, &email).await,
            Command::Runtime { tenant } => {
                switchboard::agents::worker::run(settings, tenant).await.map_err(StartupError::Fatal)
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn serve(settings: Settings) -> Result<(), StartupError> {
    let bind = settings.bind;
    let backend = settings.database_url.to_string();
    let app = Application::build(settings).await?;
    tracing::info!(%bind, port = app.port(), database = %backend, "listening");
    let (state, handle) = (app.state(), app.handle());
    let init = actix_web::rt::spawn(async move {
        let outcome = startup::initialize(&state).await;
        if outcome.is_err() {
            handle.stop(true).await;
        }
        outcome
    });
    app.run_until_stopped().await?;
    // Stopped while start-up was still waiting for the database: give up on it.
    if !init.is_finished() {
        init.abort();
        return Ok(());
    }
    match init.await {
        Ok(Err(e)) => Err(e),
        _ => Ok(()),
    }
}

fn migrate(settings: &Settings) -> Result<(), StartupError> {
    let url = &settings.database_url;
    connection::prepare(url).map_err(StartupError::Fatal)?;
    let pool = connection::build_pool(url, 1);
    let mut conn = pool.get().map_err(|e| StartupError::Fatal(format!("cannot connect to {url}: {e}")))?;
    let applied = migrations::run(&mut conn).map_err(StartupError::Fatal)?;
    if applied.is_empty() {
        println!("{url}: up to date");
    } else {
        println!("{url}: applied {}", applied.join(", "));
    }
    Ok(())
}

/// Opens the configured database (migrating it) and starts a Store on it.
fn open_store(settings: &Settings) -> Result<Store, StartupError> {
    let url = &settings.database_url;
    connection::prepare(url).map_err(StartupError::Fatal)?;
    let pool = connection::build_pool(url, 2);
    let mut conn = pool.get().map_err(|e| StartupError::Fatal(format!("cannot connect to {url}: {e}")))?;
    migrations::run(&mut conn).map_err(StartupError::Fatal)?;
    drop(conn);
    let group = GroupCommitConfig::for_backend(url, settings.store_batch_window, settings.store_batch_max);
    Ok(Store::start(url, pool, group))
}

async fn operator_key(settings: &Settings) -> Result<(), StartupError> {
    let store = open_store(settings)?;
    let key = accounts::new_operator_key(&store).await.map_err(|e| StartupError::Fatal(e.to_string()))?;
    println!("{key}");
    Ok(())
}

async fn agent_key(settings: &Settings, name: &str) -> Result<(), StartupError> {
    let store = open_store(settings)?;
    let (cerebral_id, api_key) = accounts::new_operator_cerebral(&store, name)
        .await
        .map_err(|e| StartupError::Fatal(e.to_string()))?;
    println!("{}", serde_json::json!({ "cerebral_id": cerebral_id, "api_key": api_key }));
    Ok(())
}

async fn token(settings: &Settings, email: &str) -> Result<(), StartupError> {
    let email = switchboard::identity::model::Email::parse(email).map_err(StartupError::Config)?;
    let store = open_store(settings)?;
    let user = store
        .user_by_email(email.as_str())
        .await
        .map_err(|e| StartupError::Fatal(e.to_string()))?
        .ok_or_else(|| StartupError::Config(format!("no user {}", email.as_str())))?;
    let master = master_key::resolve(settings).map_err(StartupError::Config)?;
    let keys = switchboard::identity::jwt::JwtKeys::from_master(&master);
    let issued = keys.issue(&user.id, settings.jwt_ttl).map_err(|e| StartupError::Fatal(e.to_string()))?;
    println!("{}", issued.token);
    Ok(())
}

async fn webhook_secret(settings: &Settings, tenant: Option<String>) -> Result<(), StartupError> {
    let store = open_store(settings)?;
    let fatal = |e: AppError| StartupError::Fatal(e.to_string());
    let tenant = match tenant {
        Some(t) => t,
        None => accounts::ensure_operator_tenant(&store).await.map_err(fatal)?.id,
    };
    let master = master_key::resolve(settings).map_err(StartupError::Config)?;
    let secrets = SecretBox::new(&master);
    match accounts::webhook_secret(&store, &secrets, &tenant).await.map_err(fatal)? {
        Some(secret) => {
            println!("{secret}");
            Ok(())
        }
        None => Err(StartupError::Config(format!("no tenant {tenant}"))),
    }
}

async fn bench_store(settings: &Settings, args: BenchArgs) -> Result<(), StartupError> {
    let url = &settings.database_url;
    let group = GroupCommitConfig::for_backend(url, settings.store_batch_window, settings.store_batch_max);
    let opts = BenchOptions {
        senders: args.senders.max(1),
        writes: args.writes,
        mode: args.mode,
        keep: args.keep,
        print_acks: args.print_acks,
    };
    let report = bench::run(url, group, &opts).await.map_err(StartupError::Fatal)?;
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks of every command, argument and help text.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
