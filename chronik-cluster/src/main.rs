//! `chronik-cluster`: run a node, run a local demo cluster, administer topics,
//! produce and consume, and show status.

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// The node's allocator (feature `mimalloc`, on by default): scheduler workers allocate
/// what other threads free, which glibc's malloc handles poorly.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHRONIK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.log.clone()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`status | head`) is not a failure.
        Err(cli::CliError::Io(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
