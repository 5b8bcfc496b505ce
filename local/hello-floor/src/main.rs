//! The floor of a Rust HTTP Lambda function: lambda_http answering every request with a fixed
//! body, no SDK, no configuration. Built with the workspace's release profile, it is what the
//! functions' cold start and memory are compared with (`make bench`).

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
