//! The `switchboard` command: `serve` runs the server, `admin` manages
//! organizations and extensions.

use clap::{Parser, Subcommand};
use switchboard::admin_cli::AdminArgs;
use switchboard::config::ServeArgs;

/// mimalloc rather than glibc's allocator: every send allocates on one
/// thread and frees on another, which glibc's per-thread arenas do slowly and
/// with memory they keep.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "The messaging hub of a business phone system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (flags override SWITCHBOARD_* variables, which override the --config file).
    #[command(after_help = switchboard::config::LAYERS_HELP)]
    Serve(ServeArgs),
    /// Manage organizations and extensions on a data directory.
    Admin(AdminArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                let config = args.resolve()?;
                switchboard::init_tracing(&config.log, config.log_format);
                switchboard::serve(config).await
            }
            Command::Admin(args) => {
                switchboard::init_tracing("warn", switchboard::config::LogFormat::Text);
                switchboard::admin_cli::run(args).await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
