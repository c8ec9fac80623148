//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "tally", version, about = "What does each tenant cost us, what did it pay, and what should we charge?", long_about = None)]
pub struct Cli {
    /// The configuration file (TOML); every key can also be set as TALLY_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "TALLY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the embedded database and generated files live [default: the platform's data directory].
    #[arg(long, global = true, env = "TALLY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: a SQLite file in the data directory].
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log lines for people (on a terminal) or as JSON (for log collectors).
    #[arg(long, global = true, env = "TALLY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Where the store is and what each partition (kind, source, month) holds.
    Status,
    /// Delete files that later imports replaced, and files no import finished.
    Sweep {
        /// Leave unfinished files younger than this alone (an import may still be writing them): 90s, 30m, 1h.
        #[arg(long, default_value = "1h")]
        grace: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the reference deployment's last months into the embedded database, allocate them, and serve the dashboard.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 25)]
        tenants: usize,
        #[arg(long, default_value_t = 3)]
        months: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Load the demo and exit instead of serving it.
        #[arg(long)]
        no_serve: bool,
    },
    /// Serve the API and dashboard and run the scheduled collectors and allocation.
    Serve {
        /// Overrides server.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve only: run no scheduled jobs in this process.
        #[arg(long)]
        no_scheduler: bool,
    },
    /// Apply the database migrations (moving raw rows of earlier versions into the columnar store).
    Migrate,
    /// Look after the columnar store of raw billing and usage data.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Import billing, usage or revenue files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Pull billing or usage from AWS and the application's databases.
    #[command(subcommand)]
    Collect(CollectCommand),
    /// Split the billed cost of months to tenants and store the results.
    Allocate {
        /// A month, YYYY-MM.
        #[arg(long, conflicts_with_all = ["from", "all"])]
        month: Option<String>,
        /// First month, YYYY-MM.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last month, YYYY-MM (inclusive).
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// Every month that holds billing data.
        #[arg(long)]
        all: bool,
    },
    /// Write the finance or FOCUS export of a month.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Project Reserved-Instance and Savings-Plan savings from recent usage.
    Savings {
        /// Days of billing history to look at (7, 30 or 60) [default: savings.lookback_days].
        #[arg(long)]
        lookback: Option<u32>,
        /// 1y or 3y [default: both].
        #[arg(long)]
        term: Option<String>,
        /// none, partial or all (upfront) [default: all three].
        #[arg(long)]
        payment: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// List recorded job runs, newest first.
    Jobs {
        #[arg(long)]
        job: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Explain how a tenant's share of each pool was computed.
    Explain {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        month: String,
        #[arg(long)]
        pool: Option<String>,
    },
    /// Manage the price catalogue used by the savings projection.
    #[command(subcommand)]
    Prices(PricesCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// CUR 2.0, legacy CUR (Parquet or CSV, plain or gzip): files, folders (latest snapshot per period) or s3://bucket/prefix.
    Cur {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// FOCUS 1.0 to 1.2 exports, CSV or Parquet: files, folders or s3://bucket/prefix.
    Focus {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Per-tenant usage: timestamp,tenant,metric,value[,unit,resource_id,workload] as CSV or Parquet.
    Usage { path: PathBuf },
    /// Revenue: month,tenant,amount,currency as CSV; each month in the file is replaced.
    Revenue { path: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CollectCommand {
    /// Daily cost from Cost Explorer for [from, to), plus the restatement window.
    Costs {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Cost Explorer's own Reserved-Instance and Savings-Plan recommendations (24 requests, $0.24).
    Recommendations {
        /// Days Cost Explorer looks back: 7, 30 or 60.
        #[arg(long, default_value_t = 30)]
        lookback: u32,
    },
    /// Per-tenant usage from CloudWatch, PostgreSQL tenant schemas and Redis for [from, to).
    Usage {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// One row per tenant x service x pool, adding up to the bill.
    Monthly {
        #[arg(long)]
        month: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = FileFormat::Csv)]
        format: FileFormat,
    },
    /// FOCUS 1.2 rows of the imported billing data, tenant added to Tags.
    Focus {
        #[arg(long)]
        month: String,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = FileFormat::Parquet)]
        format: FileFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it alone on standard output (it is shown only once).
    Create {
        /// admin, finance, viewer or tenant.
        #[arg(long)]
        role: String,
        /// The tenant a tenant token may read.
        #[arg(long)]
        tenant: Option<String>,
        /// Expiry: a date (YYYY-MM-DD), an RFC 3339 time, or a duration such as 30d or 12h.
        #[arg(long)]
        expires: Option<String>,
        /// A note saying who or what holds the token.
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Load an AWS Price List offer file (EC2, RDS or ElastiCache as JSON or CSV; Compute Savings Plans as JSON) into the catalogue.
    Import { file: PathBuf },
    /// Show the catalogue: where each offer's prices come from, their date, and the prices.
    Show {
        /// Only instance types containing this text (e.g. m5, db.r6g).
        #[arg(long)]
        filter: Option<String>,
    },
}
