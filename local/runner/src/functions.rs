//! The four handlers, wired exactly as their Lambda binaries' `main.rs` wire them: config from
//! the function's (template-derived) environment, clients built once, the same `handle`.

use std::sync::Arc;

use aws_config::SdkConfig;
use futures::FutureExt;

use crate::http_api::HttpHandler;
use crate::sqs_source::SqsHandler;
use crate::stream_source::StreamHandler;
use crate::RunnerError;

pub fn request_api(config: &shared::Config, sdk: &SdkConfig) -> HttpHandler {
    let deps = Arc::new(request_api::Deps::new(config, sdk));
    Arc::new(move |request| {
        let deps = deps.clone();
        async move {
            request_api::handle(request, &deps)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    })
}

pub fn compute(config: &shared::Config, sdk: &SdkConfig) -> Result<SqsHandler, RunnerError> {
    let deps = Arc::new(
        compute::Deps::new(config, sdk).map_err(|e| RunnerError::Init {
            binary: "compute".into(),
            source: Box::new(e),
        })?,
    );
    Ok(Arc::new(move |event| {
        let deps = deps.clone();
        async move {
            compute::handle(event, &deps)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }))
}

pub fn metadata_sync(config: &shared::Config, sdk: &SdkConfig) -> SqsHandler {
    let deps = Arc::new(metadata_sync::Deps::new(config, sdk));
    Arc::new(move |event| {
        let deps = deps.clone();
        async move {
            metadata_sync::handle(event, &deps)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    })
}

pub fn notifier(config: &shared::Config, sdk: &SdkConfig) -> StreamHandler {
    let deps = Arc::new(notifier::Deps::new(config, sdk));
    Arc::new(move |event| {
        let deps = deps.clone();
        async move {
            notifier::handle(event, &deps)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    })
}

/// The handler of a template function, by its cargo binary (`Metadata.BuildProperties.Binary`).
pub enum Handler {
    Http(HttpHandler),
    Sqs(SqsHandler),
    Stream(StreamHandler),
}

pub fn by_binary(
    binary: &str,
    config: &shared::Config,
    sdk: &SdkConfig,
) -> Result<Handler, RunnerError> {
    Ok(match binary {
        "request-api" => Handler::Http(request_api(config, sdk)),
        "compute" => Handler::Sqs(compute(config, sdk)?),
        "metadata-sync" => Handler::Sqs(metadata_sync(config, sdk)),
        "notifier" => Handler::Stream(notifier(config, sdk)),
        other => return Err(RunnerError::UnknownBinary(other.to_owned())),
    })
}
