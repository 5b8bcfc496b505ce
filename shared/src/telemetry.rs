//! Logging: the Lambda runtime's tracing subscriber (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`,
//! level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`).

pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
