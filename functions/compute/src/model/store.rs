//! Which model scores: the embedded default, a team's own, or an S3 artifact cached in memory.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rand::Rng;
use tokio::time::Instant;

use super::{LogisticModel, Model};
use crate::Error;

/// The largest model artifact read (the shipped one is about 3 KB).
pub const MAX_ARTIFACT_BYTES: u64 = 1024 * 1024;

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    pub fn parse(uri: &str) -> Result<Self, Error> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| Error::Model(format!("model URI {uri:?} must start with s3://")))?;
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Self {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }),
            _ => Err(Error::Model(format!(
                "model URI {uri:?} must be s3://bucket/key"
            ))),
        }
    }
}

/// After a failed reload, a previously loaded model keeps serving and the reload is tried
/// again after this long (jittered), not on every job.
const RETRY_AFTER_FAILED_RELOAD: Duration = Duration::from_secs(15);

/// The model to score with. Cheap to share (`Arc` inside); [`ModelStore::current`] is a lock-free
/// read while the cached model is fresh.
#[derive(Clone)]
pub struct ModelStore {
    inner: Arc<Inner>,
}

enum Inner {
    Fixed(Arc<dyn Model>),
    S3(S3Models),
}

struct S3Models {
    client: aws_sdk_s3::Client,
    location: S3Location,
    ttl: Duration,
    cached: ArcSwapOption<Loaded>,
    /// Single flight: one reload at a time; the others wait for it and use its result.
    reload: tokio::sync::Mutex<()>,
}

struct Loaded {
    model: Arc<dyn Model>,
    fresh_until: Instant,
}

impl std::fmt::Debug for ModelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Fixed(model) => write!(f, "ModelStore::Fixed({})", model.version()),
            Inner::S3(s3) => write!(
                f,
                "ModelStore::S3(s3://{}/{}, ttl {:?})",
                s3.location.bucket, s3.location.key, s3.ttl
            ),
        }
    }
}

impl ModelStore {
    /// The default model embedded in the binary.
    pub fn embedded() -> Self {
        Self::fixed(Arc::new(LogisticModel::embedded()))
    }

    /// Always this model (a team's own [`Model`]).
    pub fn fixed(model: Arc<dyn Model>) -> Self {
        Self {
            inner: Arc::new(Inner::Fixed(model)),
        }
    }

    /// A logistic-regression artifact at `uri` (`s3://bucket/models/name/version.json`), loaded
    /// on first use and reloaded after `ttl` plus up to 20% random jitter, so that containers do
    /// not all reload at once.
    pub fn s3(client: aws_sdk_s3::Client, uri: &str, ttl: Duration) -> Result<Self, Error> {
        Ok(Self {
            inner: Arc::new(Inner::S3(S3Models {
                client,
                location: S3Location::parse(uri)?,
                ttl,
                cached: ArcSwapOption::empty(),
                reload: tokio::sync::Mutex::new(()),
            })),
        })
    }

    /// The artifact at `uri` when there is one, else the embedded model. Fails on a malformed
    /// URI, so a misconfigured function fails at cold start.
    pub fn from_uri(
        uri: Option<&str>,
        client: aws_sdk_s3::Client,
        ttl: Duration,
    ) -> Result<Self, Error> {
        match uri {
            Some(uri) => Self::s3(client, uri, ttl),
            None => Ok(Self::embedded()),
        }
    }

    /// The model to score with now. For an S3 model: the cached one while fresh; otherwise one
    /// caller reloads it while the others keep using the loaded model (or, before the first
    /// load, wait for it and share the result). A failed reload keeps serving
    /// the previous model (and tries again a little later); with no previous model it is an
    /// error (`Error::Aws` for S3 failures, `Error::Model` for an invalid artifact).
    pub async fn current(&self) -> Result<Arc<dyn Model>, Error> {
        let s3 = match &*self.inner {
            Inner::Fixed(model) => return Ok(model.clone()),
            Inner::S3(s3) => s3,
        };
        if let Some(loaded) = s3.fresh() {
            return Ok(loaded);
        }
        // Stale-while-revalidate: while another job reloads, a loaded model keeps serving.
        let _guard = match s3.reload.try_lock() {
            Ok(guard) => guard,
            Err(_) => match s3.cached.load_full() {
                Some(stale) => return Ok(stale.model.clone()),
                None => s3.reload.lock().await,
            },
        };
        if let Some(loaded) = s3.fresh() {
            return Ok(loaded);
        }
        match s3.fetch().await {
            Ok(model) => {
                tracing::info!(
                    model_version = model.version(),
                    bucket = %s3.location.bucket,
                    key = %s3.location.key,
                    "model loaded"
                );
                s3.cached.store(Some(Arc::new(Loaded {
                    model: model.clone(),
                    fresh_until: Instant::now() + jittered(s3.ttl),
                })));
                Ok(model)
            }
            Err(err) => match s3.cached.load_full() {
                Some(previous) => {
                    tracing::warn!(
                        error = %err,
                        model_version = previous.model.version(),
                        "model reload failed; keeping the loaded model"
                    );
                    s3.cached.store(Some(Arc::new(Loaded {
                        model: previous.model.clone(),
                        fresh_until: Instant::now() + jittered(RETRY_AFTER_FAILED_RELOAD),
                    })));
                    Ok(previous.model.clone())
                }
                None => Err(err),
            },
        }
    }
}

impl S3Models {
    fn fresh(&self) -> Option<Arc<dyn Model>> {
        self.cached
            .load()
            .as_ref()
            .filter(|loaded| Instant::now() < loaded.fresh_until)
            .map(|loaded| loaded.model.clone())
    }

    async fn fetch(&self) -> Result<Arc<dyn Model>, Error> {
        let output = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(&self.location.key)
            .send()
            .await
            .map_err(|e| shared::Error::aws("S3", "GetObject", e))?;
        // A model artifact is a few KB; a larger object is a mistake, not something to buffer.
        let size = output.content_length.unwrap_or(0).max(0) as u64;
        if size > MAX_ARTIFACT_BYTES {
            return Err(Error::Model(format!(
                "the artifact at s3://{}/{} is {size} bytes; at most {MAX_ARTIFACT_BYTES} are read",
                self.location.bucket, self.location.key
            )));
        }
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| shared::Error::Aws {
                service: "S3",
                operation: "GetObject",
                retry: shared::Retry::Transient,
                source: Box::new(e),
            })?;
        let bytes = body.into_bytes();
        let model = tokio::task::spawn_blocking(move || LogisticModel::from_json(&bytes))
            .await
            .map_err(|e| Error::Model(format!("model parsing did not finish: {e}")))??;
        Ok(Arc::new(model))
    }
}

/// `ttl` plus a uniformly random 0..=20% of it.
fn jittered(ttl: Duration) -> Duration {
    let extra_ms = (ttl.as_millis() / 5) as u64;
    ttl + Duration::from_millis(rand::rng().random_range(0..=extra_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_parse() {
        assert_eq!(
            S3Location::parse("s3://data/models/fraud-lr/2.json").unwrap(),
            S3Location {
                bucket: "data".into(),
                key: "models/fraud-lr/2.json".into()
            }
        );
        for bad in ["https://x/y", "s3://bucket", "s3:///key", "s3://bucket/"] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let ttl = Duration::from_secs(300);
        for _ in 0..100 {
            let d = jittered(ttl);
            assert!(d >= ttl && d <= ttl + Duration::from_secs(60), "{d:?}");
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn embedded_store_serves_the_embedded_model() {
        let model = ModelStore::embedded().current().await.unwrap();
        assert_eq!(model.version(), "fraud-lr/1");
    }
}
