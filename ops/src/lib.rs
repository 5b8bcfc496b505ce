//! `deferred-ops`: the runbook's tools (docs/DEPLOY.md#alarms) as one operator CLI.
//!
//! | command | what it does |
//! |---|---|
//! | `redrive` | moves a dead-letter queue's messages back to their source queue (SQS message move task) |
//! | `stuck-jobs` | finds jobs pending or running past their deadline; re-dispatches or fails them (`--dry-run` lists) |
//! | `replay-notifier-failures` | reads the stream ranges notifier gave up on (NotifierFailureQueue) and republishes their events |
//! | `catalog verify` / `catalog rebuild` | compares CatalogTable with a listing of the bucket; rebuild fixes the drift |
//! | `subject` | a subject's record, catalog objects and the history its record keeps |
//!
//! Every command runs as an operator (the caller's own AWS credentials), not as a function's
//! role. It changes state only through the code the functions use: `ScoreStore`'s conditional
//! writes, `shared::dispatch`, notifier's handler, `CatalogStore`'s ordered writes. The SDK
//! clients are injected ([`Clients`]), so the tests run every command against the emulator.

pub mod catalog;
pub mod redrive;
pub mod replay;
pub mod stuck;
pub mod subject;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde::Serialize;

/// Exit status of a command that ran but found something needing attention: catalog drift
/// (`catalog verify`), stream ranges no longer readable, a move task that did not complete.
pub const EXIT_ATTENTION: i32 = 3;

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS call, a store or a publisher failed (the source says which and why).
    #[error(transparent)]
    Aws(#[from] shared::Error),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("notifier failed on a replayed range")]
    Notifier(#[from] notifier::Error),
    #[error("reading an object for the catalog failed")]
    Object(#[from] metadata_sync::error::Error),
}

/// The SDK clients the commands use.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            dynamodb: shared::aws::dynamodb(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            sns: shared::aws::sns(sdk),
            s3: shared::aws::s3(sdk),
        }
    }
}

/// Deferred's operator tools. Resource names come from flags or the environment variables the
/// functions use (SCORES_TABLE, CATALOG_TABLE, ...); the stack's outputs give their values.
#[derive(Debug, Parser)]
#[command(name = "deferred-ops", version)]
#[command(
    after_help = "AWS credentials and region come from the environment (AWS_PROFILE, AWS_REGION, ...); \
AWS_ENDPOINT_URL points every call at an emulator. Exit status: 0 done, 1 failed, 2 usage, \
3 done but something needs attention (drift, unreadable ranges, an unfinished move task)."
)]
pub struct Cli {
    /// Print the report as JSON (one object) instead of text
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Move a dead-letter queue's messages back to their source queue (SQS message move task)
    Redrive(redrive::Args),
    /// Find jobs pending or running past their deadline; re-dispatch or fail them
    StuckJobs(stuck::Args),
    /// Republish the score events of stream ranges notifier gave up on (NotifierFailureQueue)
    ReplayNotifierFailures(replay::Args),
    /// Compare CatalogTable with a listing of the data bucket (verify), or fix the drift (rebuild)
    Catalog(catalog::Args),
    /// Show a subject's record, its catalog objects and its job history
    Subject(subject::Args),
}

/// What a command did or found, printed as text or JSON.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    Redrive(redrive::Report),
    StuckJobs(stuck::Report),
    Replay(replay::Report),
    Catalog(catalog::Report),
    Subject(Box<subject::Report>),
}

impl Report {
    /// 0, or [`EXIT_ATTENTION`] when the command ran but left something for the operator.
    pub fn exit_code(&self) -> i32 {
        let attention = match self {
            Self::Redrive(r) => r.needs_attention(),
            Self::StuckJobs(_) | Self::Subject(_) => false,
            Self::Replay(r) => r.needs_attention(),
            Self::Catalog(r) => r.needs_attention(),
        };
        if attention {
            EXIT_ATTENTION
        } else {
            0
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redrive(r) => r.fmt(f),
            Self::StuckJobs(r) => r.fmt(f),
            Self::Replay(r) => r.fmt(f),
            Self::Catalog(r) => r.fmt(f),
            Self::Subject(r) => r.fmt(f),
        }
    }
}

/// Runs one command at `now` (the tests pass their own clock).
pub async fn run(command: Command, clients: &Clients, now: DateTime<Utc>) -> Result<Report, Error> {
    Ok(match command {
        Command::Redrive(args) => Report::Redrive(redrive::run(&args, clients).await?),
        Command::StuckJobs(args) => Report::StuckJobs(stuck::run(&args, clients, now).await?),
        Command::ReplayNotifierFailures(args) => Report::Replay(replay::run(&args, clients).await?),
        Command::Catalog(args) => Report::Catalog(catalog::run(&args, clients, now).await?),
        Command::Subject(args) => {
            Report::Subject(Box::new(subject::run(&args, clients, now).await?))
        }
    })
}

/// A time in text output (RFC 3339, milliseconds, UTC).
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
