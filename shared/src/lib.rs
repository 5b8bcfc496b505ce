//! Deferred's common core, shared by every function and by the local tooling.
//!
//! Functions are thin: each reads its own configuration once at cold start ([`config::Env`]),
//! builds the AWS clients once ([`aws`]), and hands these to its handler. Everything they share
//! lives here; scoring (the model and the features) lives with compute, its only user.

pub mod aws;
pub mod batch_get;
pub mod catalog_store;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod events;
pub mod expression;
pub mod publisher;
pub mod retry;
pub mod score_store;
#[cfg(feature = "stream-records")]
pub mod stream_record;
pub mod telemetry;

pub use error::{Error, Retry};
