//! Handler tests against moto: `scripts/moto.sh run cargo test -p request-api`.

mod batch_get;
mod common;
mod errors;
mod fuzz;
mod get_score;
mod metrics;
mod openapi;
mod protection;
mod refresh;
