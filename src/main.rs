//! The `tagd` binary: parse the command line, set up logging, dispatch.

use clap::Parser;

/// The writer thread allocates and frees small strings for every tag it stores (rows
/// read back, index changes); glibc's allocator took a fifth of its time (D62).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = tagd::cli::Cli::parse();
    // A configuration that does not resolve logs as by default here; the command then
    // stops on it with the full message (or, like copy-store, never reads it).
    let log = tagd::logging::init(&cli.log_settings().unwrap_or_default());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tagd: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(tagd::cli::run(cli));
    // The buffered log first, so an error message comes after the lines leading to it.
    drop(log);
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tagd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
