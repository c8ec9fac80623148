//! The benchmark's data generator behind `benches/run.sh`:
//! `tally-bench generate S|M|L DIR` writes the size's CUR 2.0 and usage files.
//! The benchmark itself times the `tally` command line on them.

#![allow(clippy::print_stdout, reason = "a benchmark driver prints its figures")]

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tally_domain::Month;

/// The benchmark month.
pub const MONTH: &str = "2026-10";

fn main() -> Result<()> {
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
        _ => bail!("usage: tally-bench generate S|M|L DIR"),
    }
    Ok(())
}
