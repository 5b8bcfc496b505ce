//! The functions the runner plays, wired exactly as their Lambda binaries wire them: each crate's
//! `Deps::from_env` (here with the function's template environment and its own IAM principal),
//! then the same `handle`. Adding a function is one line in [`by_binary`].

use std::sync::Arc;

use aws_config::SdkConfig;
use futures::FutureExt;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use shared::config::Env;
use tracing::Instrument;

use crate::http_api::HttpHandler;
use crate::sqs_source::SqsHandler;
use crate::stream_source::StreamHandler;
use crate::RunnerError;

/// What a handler invocation failed with, sources kept (as the Lambda runtime gets it).
pub type HandlerError = lambda_runtime::Error;

/// The handler of a template function, by its event source kind.
pub enum Handler {
    Http(HttpHandler),
    Sqs(SqsHandler),
    Stream(StreamHandler),
}

/// `$kind` handler of the crate `$function`: its `Deps` built once from `env` and `sdk`, each
/// invocation calling its `handle`.
macro_rules! function {
    ($kind:ident, $function:ident, $env:expr, $sdk:expr) => {{
        let deps = Arc::new($function::Deps::from_env($env, $sdk).map_err(|source| {
            RunnerError::Init {
                binary: stringify!($function).replace('_', "-"),
                source: Box::new(source),
            }
        })?);
        let name = stringify!($function).replace('_', "-");
        Handler::$kind(Arc::new(move |event| {
            let deps = deps.clone();
            // The span Lambda's runtime opens around an invocation (the same `requestId`
            // field), plus the function's name: here every function shares one process.
            let span = tracing::info_span!(
                "Lambda runtime invoke",
                function = %name,
                requestId = %Invocation::request_id(&event),
            );
            async move {
                // A killed invocation (emulator::faults::Fault::Kill) ends here, as a crash.
                match emulator::faults::until_killed($function::handle(event, &deps)).await {
                    Ok(output) => output.map_err(HandlerError::from),
                    Err(killed) => Err(HandlerError::from(killed)),
                }
            }
            .instrument(span)
            .boxed()
        }))
    }};
}

/// The handler for a template function's cargo binary (`Metadata.BuildProperties.Binary`), with
/// the function's environment and SDK config (its own principal).
pub fn by_binary(binary: &str, env: &Env, sdk: &SdkConfig) -> Result<Handler, RunnerError> {
    Ok(match binary {
        "request-api" => function!(Http, request_api, env, sdk),
        "compute" => function!(Sqs, compute, env, sdk),
        "notifier" => function!(Stream, notifier, env, sdk),
        "metadata-sync" => function!(Sqs, metadata_sync, env, sdk),
        other => return Err(RunnerError::UnknownBinary(other.to_owned())),
    })
}

/// The request id of an invocation's event, as the function's logs show it.
trait Invocation {
    fn request_id(&self) -> String;
}

impl<T> Invocation for lambda_runtime::LambdaEvent<T> {
    fn request_id(&self) -> String {
        self.context.request_id.clone()
    }
}

impl Invocation for lambda_http::Request {
    fn request_id(&self) -> String {
        match self.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => {
                context.request_id.clone().unwrap_or_default()
            }
            _ => String::new(),
        }
    }
}
