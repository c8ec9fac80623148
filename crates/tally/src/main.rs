//! `tally`: attributes a multi-tenant SaaS's AWS bill to its tenants.
//!
//! Architecture invariants:
//! - This binary is the only place that reads the environment (options,
//!   `TALLY_*` configuration overrides, `DATABASE_URL`, AWS credentials
//!   through the SDK's chain) and sets up logging.
//! - It wires crates together and prints; the work lives in the library
//!   crates (`tally-jobs` above all), so every command is testable there.

mod cli;
mod commands;
mod output;
mod savings_cli;

use std::process::ExitCode;

use clap::Parser;

// jemalloc, as polars recommends: glibc's malloc keeps gigabytes of the
// allocation's freed column buffers resident in a large month.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    output::init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(code) => code,
        Err(e) => {
            // An error may quote an address with its password: never shown, never logged.
            let said = tally_domain::redact(&format!("{e:#}"));
            tracing::error!("{said}");
            eprintln!("error: {said}");
            ExitCode::FAILURE
        }
    }
}
