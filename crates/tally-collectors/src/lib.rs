//! Clients for the outside world, each behind a trait so that jobs can be
//! tested: AWS Cost Explorer, CloudWatch and S3, the application's Redis.
//!
//! Architecture invariants:
//! - This is the only crate that knows AWS SDK types. What it returns is
//!   domain values (`CostLine`, `UsageSample`) or plain structs.
//! - Retries are ours, not the SDK's: throttling and server errors back off
//!   exponentially with jitter up to a limit, then fail the whole run.
//! - Collectors never write: they return what they gathered, and the caller
//!   replaces its scope in one transaction, so a failed run writes nothing.
//!
//! Entry points: [`aws::AwsSettings`], [`cost_explorer`], [`recommendations`], [`s3`].

pub mod aws;
pub mod cloudwatch;
pub mod cost_explorer;
pub mod recommendations;
pub mod redis_usage;
pub mod retry;
pub mod s3;
pub mod tenant_db;
