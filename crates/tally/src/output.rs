//! Logging, progress and printing.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use tally_jobs::Progress;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("TALLY_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn,polars=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| RedactedLine(Vec::new()));
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).with_target(false).compact().init(),
    }
}

/// One log line, written to standard error once it is complete, with every
/// secret it holds replaced (`tally_domain::redact`): whatever a library or
/// a call site puts in an event, no password or token reaches the log.
struct RedactedLine(Vec<u8>);

impl std::io::Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let line = tally_domain::redact(&String::from_utf8_lossy(&self.0));
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        }
    }
}

/// A bar on a terminal, log lines otherwise.
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    terminal: bool,
}

impl Bar {
    pub fn new() -> Self {
        Self { bar: Mutex::new(None), terminal: std::io::stderr().is_terminal() }
    }
}

impl Progress for Bar {
    fn stage(&self, what: &str, total: u64) {
        if self.terminal {
            let bar = if total > 0 { ProgressBar::new(total) } else { ProgressBar::new_spinner() };
            let style = if total > 0 {
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
            } else {
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            };
            bar.set_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            *self.bar.lock().expect("progress") = Some(bar);
        } else {
            tracing::info!("{what}...");
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().expect("progress").as_ref() {
            b.inc(n);
        }
    }

    fn done(&self, message: &str) {
        match self.bar.lock().expect("progress").take() {
            Some(b) => b.finish_with_message(message.to_owned()),
            None => tracing::info!("{message}"),
        }
    }
}

/// Prints a table with aligned columns; numbers (by header) right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>], numeric: &[usize]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| if numeric.contains(&i) { format!("{c:>w$}", w = widths[i]) } else { format!("{c:<w$}", w = widths[i]) })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}
