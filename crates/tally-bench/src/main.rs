//! The benchmark driver behind `benches/run.sh`.
//!
//! - `tally-bench generate S|M|L DIR` writes the size's CUR 2.0 and usage files.
//! - `tally-bench allocate CUR USAGE [TOTALS.csv]` allocates the month from the
//!   files, prints the time and the process's peak memory, and can write the
//!   tenant x pool totals (before rounding) for the comparison with DuckDB.

#![allow(clippy::print_stdout, reason = "a benchmark driver prints its figures")]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tally_domain::{AllocationConfig, Currency, Month};

// jemalloc, as polars recommends: glibc's malloc keeps gigabytes of freed
// column buffers resident (peak on L: 6.8 GiB with glibc, 5.3 GiB with jemalloc).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The benchmark month.
pub const MONTH: &str = "2026-10";

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<()> {
    // TALLY_PIPELINE_TIMINGS=1 prints each stage's time and the peak memory so far.
    tally_allocation::allocate::report_stages(std::env::var_os("TALLY_PIPELINE_TIMINGS").is_some());
    let args: Vec<String> = std::env::args().collect();
    let month = Month::parse(MONTH).expect("month");
    match args.get(1).map(String::as_str) {
        Some("generate") => {
            let size: tally_datagen::BenchSize = args.get(2).context("a size: S, M or L")?.parse().map_err(anyhow::Error::msg)?;
            let out = Path::new(args.get(3).context("an output folder")?);
            let started = Instant::now();
            let g = tally_datagen::generate(&tally_datagen::Params::benchmark(size, month), out)?;
            println!(
                "generated {size:?}: {} billing lines, {} usage rows, {} tenants in {:.1}s -> {} {}",
                g.billing_lines,
                g.usage_rows,
                g.tenants.len(),
                started.elapsed().as_secs_f64(),
                g.cur_files[0].display(),
                g.usage_files[0].display()
            );
        }
        Some("allocate") => {
            let (cur, usage) = (Path::new(args.get(2).context("the CUR file")?), Path::new(args.get(3).context("the usage file")?));
            let started = Instant::now();
            let cfg = AllocationConfig::default();
            let a = tally_allocation::allocate_files(&cfg, Currency::USD, month, "user_tenant", cur, usage)?;
            let took = started.elapsed().as_secs_f64();
            let tenants = a.monthly.iter().filter_map(|r| r.allocatee.tenant()).collect::<std::collections::BTreeSet<_>>().len();
            println!("tally: {took:.3} s, peak {:.0} MiB, {} monthly rows, {} daily rows, {tenants} tenants", peak_rss_mib(), a.monthly.len(), a.daily.len());
            if let Some(out) = args.get(4) {
                let totals = tally_allocation::allocate::split_totals(&cfg, cur, usage, "user_tenant")?;
                let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
                writeln!(f, "allocatee,pool,unblended,amortized")?;
                for (who, pool, u, am) in totals {
                    writeln!(f, "{who},{pool},{u:.9},{am:.9}")?;
                }
            }
        }
        _ => bail!("usage: tally-bench generate S|M|L DIR | tally-bench allocate CUR USAGE [TOTALS.csv]"),
    }
    Ok(())
}
