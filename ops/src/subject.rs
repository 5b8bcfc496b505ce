//! `subject`: everything Deferred keeps about one subject, read consistently.
//!
//! - its ScoresTable record, as stored (an expired record is shown and marked so: the API treats
//!   it as absent);
//! - its live catalog objects (`dir = datasets/{subject_id}`);
//! - its history: what the record itself keeps of its latest job. Deferred stores no event log:
//!   ScoresTable holds one item per subject, overwritten by each job, and the events published on
//!   SNS are not kept anywhere of ours. So the "last events" are the latest job's milestones
//!   (requested, dispatched and how often, claimed and how often, finished or failed, with the
//!   error), nothing of earlier jobs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::catalog_store::{CatalogEntry, CatalogStore};
use shared::domain::{ScoreRecord, SubjectId};

use crate::{time, Clients, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The subject (shop) id
    pub subject_id: String,
    /// ScoresTable's name
    #[arg(long, env = "SCORES_TABLE")]
    pub scores_table: String,
    /// CatalogTable's name
    #[arg(long, env = "CATALOG_TABLE")]
    pub catalog_table: String,
}

/// One milestone of the latest job, from the record's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Milestone {
    pub at: DateTime<Utc>,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub subject_id: String,
    pub record: Option<ScoreRecord>,
    /// The record's `expires_at` has passed: the API treats it as absent.
    pub expired: bool,
    pub objects: Vec<CatalogEntry>,
    pub history: Vec<Milestone>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "subject {}", self.subject_id)?;
        match &self.record {
            None => writeln!(f, "  no record in ScoresTable")?,
            Some(record) => {
                writeln!(
                    f,
                    "  {} job {} ({:?}){}{}",
                    record.status.as_str(),
                    record.job_id,
                    record.reason,
                    if record.stale { ", stale" } else { "" },
                    if self.expired { ", expired" } else { "" }
                )?;
                if let Some(result) = &record.result {
                    writeln!(
                        f,
                        "  score {} ({:?}), model {}",
                        result.score, result.band, result.model_version
                    )?;
                }
                if let Some(error) = &record.error {
                    writeln!(
                        f,
                        "  error {} (retryable: {}): {}",
                        error.code, error.retryable, error.message
                    )?;
                }
            }
        }
        writeln!(f, "  {} catalog object(s)", self.objects.len())?;
        for object in &self.objects {
            writeln!(
                f,
                "    {} {} bytes{}",
                object.key(),
                object.size,
                object
                    .last_modified
                    .map_or_else(String::new, |t| format!(", modified {}", time(t)))
            )?;
        }
        writeln!(
            f,
            "  latest job's history (the record keeps no earlier jobs):"
        )?;
        for milestone in &self.history {
            writeln!(f, "    {} {}", time(milestone.at), milestone.what)?;
        }
        Ok(())
    }
}

pub async fn run(args: &Args, clients: &Clients, now: DateTime<Utc>) -> Result<Report, Error> {
    let subject = SubjectId::parse(&args.subject_id)
        .map_err(|e| Error::InvalidArgument(format!("{:?}: {e}", args.subject_id)))?;
    // Read as stored (ScoreStore::get hides an expired record; an operator wants to see it).
    let output = clients
        .dynamodb
        .get_item()
        .table_name(&args.scores_table)
        .key("subject_id", AttributeValue::S(subject.as_str().to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| shared::Error::aws("DynamoDB", "GetItem", e))?;
    let record: Option<ScoreRecord> = output
        .item
        .filter(|item: &HashMap<String, AttributeValue>| !item.is_empty())
        .map(serde_dynamo::from_item)
        .transpose()
        .map_err(shared::Error::from)?;
    let objects = CatalogStore::new(clients.dynamodb.clone(), &args.catalog_table)
        .list_dir(&subject.dataset_dir())
        .await?;
    Ok(Report {
        subject_id: subject.as_str().to_owned(),
        expired: record.as_ref().is_some_and(|r| r.is_expired(now)),
        history: record.as_ref().map(history).unwrap_or_default(),
        record,
        objects,
    })
}

/// The latest job's milestones, oldest first.
pub fn history(record: &ScoreRecord) -> Vec<Milestone> {
    let mut milestones = vec![Milestone {
        at: record.requested_at,
        what: format!("requested ({:?})", record.reason).to_lowercase(),
    }];
    if record.dispatches > 1 {
        milestones.push(Milestone {
            at: record.dispatched_at,
            what: format!("re-dispatched (dispatch {} of the job)", record.dispatches),
        });
    }
    if let Some(started) = record.started_at {
        let lease = record
            .lease_until
            .map_or_else(String::new, |l| format!(", lease until {}", time(l)));
        milestones.push(Milestone {
            at: started,
            what: format!("claimed (attempt {}{lease})", record.attempts),
        });
    }
    if let Some(completed) = record.completed_at {
        let what = match &record.error {
            Some(error) => format!("failed: {} {}", error.code, error.message),
            None => match &record.result {
                Some(result) => format!("done: score {} ({:?})", result.score, result.band),
                None => "finished".to_owned(),
            },
        };
        milestones.push(Milestone {
            at: completed,
            what,
        });
    }
    milestones.sort_by_key(|m| m.at);
    milestones
}
