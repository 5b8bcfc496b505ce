//! Deferred's common core, shared by every function and by the local tooling.
//!
//! Functions are thin: they build a [`config::Config`] once at cold start, the AWS clients once
//! ([`aws`]), and hand these to their handler. Everything they share lives here.

pub mod aws;
pub mod batch_get;
pub mod catalog_store;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod expression;
pub mod features;
pub mod model;
pub mod publisher;
pub mod retry;
pub mod score_store;
pub mod telemetry;

pub use config::Config;
pub use error::{Error, Retry};
