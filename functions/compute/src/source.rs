//! Where features come from: the [`FeatureSource`] port and the shipped data-lake adapter.
//!
//! [`LakeSource`] lists the subject's objects from CatalogTable (`dir = datasets/{subject_id}`;
//! listing S3 itself is slow and costly), streams each `.ndjson` / `.ndjson.gz` object from S3
//! and feeds it, chunk by chunk, to a [`FeatureAccumulator`] on a blocking thread: the async
//! side only moves bytes, decompression and parsing never run on the async workers, and no
//! object is ever held in memory whole.

use std::io::{self, BufReader, Read};
use std::sync::Arc;

use crate::features::FeatureAccumulator;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use shared::catalog_store::{CatalogEntry, CatalogStore};
use shared::domain::{FeatureSummary, SubjectId};
use tokio::sync::mpsc;

use crate::Error;

/// Gathers a subject's features. The shipped one is [`LakeSource`]; a team can plug in its own
/// (e.g. a relational database) with [`crate::Deps::with_feature_source`].
///
/// Returns the features of whatever data there is: a summary with `rows == 0` means there was
/// no usable data, and the job fails with `NO_DATA`. Errors are classified by
/// [`Error::is_retryable`]. The future may be dropped at the function's deadline.
pub trait FeatureSource: Send + Sync {
    fn gather<'a>(&'a self, subject: &'a SubjectId)
        -> BoxFuture<'a, Result<FeatureSummary, Error>>;
}

/// Objects read at once per subject by default (each streams into its own accumulator; they are
/// merged). Overlaps S3's time to first byte with parsing; measured in docs/BENCHMARKS.md.
pub const OBJECTS_IN_FLIGHT: usize = 4;

/// Chunks buffered between the download and the parser of one object (back-pressure: the
/// download waits while the parser is behind).
const CHUNKS_IN_FLIGHT: usize = 8;

const READ_BUFFER: usize = 64 * 1024;

/// Whether a catalog entry is a transaction file.
pub fn is_dataset_object(name: &str) -> bool {
    name.ends_with(".ndjson") || name.ends_with(".ndjson.gz")
}

/// What one subject may hold before compute refuses it with `TOO_LARGE` (template Parameters
/// `ComputeMaxObjectsPerSubject`, `ComputeMaxBytesPerSubject`, `ComputeMaxDistinctBuyers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubjectLimits {
    pub max_objects: u64,
    pub max_bytes: u64,
    pub max_distinct_buyers: u64,
}

impl Default for SubjectLimits {
    fn default() -> Self {
        Self {
            max_objects: 10_000,
            max_bytes: 5 * 1024 * 1024 * 1024,
            max_distinct_buyers: crate::features::DEFAULT_MAX_DISTINCT_BUYERS as u64,
        }
    }
}

/// The catalog + S3 feature source.
#[derive(Clone, Debug)]
pub struct LakeSource {
    catalog: CatalogStore,
    s3: aws_sdk_s3::Client,
    limits: SubjectLimits,
    objects_in_flight: usize,
}

impl LakeSource {
    pub fn new(catalog: CatalogStore, s3: aws_sdk_s3::Client) -> Self {
        Self {
            catalog,
            s3,
            limits: SubjectLimits::default(),
            objects_in_flight: OBJECTS_IN_FLIGHT,
        }
    }

    pub fn with_limits(mut self, limits: SubjectLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How many of a subject's objects are downloaded and parsed at once (at least 1).
    pub fn with_objects_in_flight(mut self, objects: usize) -> Self {
        self.objects_in_flight = objects.max(1);
        self
    }

    async fn gather_features(&self, subject: &SubjectId) -> Result<FeatureSummary, Error> {
        let limits = self.limits;
        let too_large = |what, found, limit| Error::TooLarge { what, found, limit };
        let listed = self
            .catalog
            .list_dir_at_most(&subject.dataset_dir(), limits.max_objects as usize)
            .await?
            .ok_or_else(|| {
                too_large(
                    "the number of objects",
                    limits.max_objects + 1,
                    limits.max_objects,
                )
            })?;
        let mut entries: Vec<CatalogEntry> = listed
            .into_iter()
            .filter(|e| is_dataset_object(&e.name))
            .collect();
        let bytes: u64 = entries.iter().map(|e| e.size.max(0) as u64).sum();
        if bytes > limits.max_bytes {
            return Err(too_large("the data in bytes", bytes, limits.max_bytes));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        tracing::debug!(subject = %subject, objects = entries.len(), bytes, "catalog listed");
        let max_buyers = limits.max_distinct_buyers as usize;
        let total = futures::stream::iter(entries)
            .map(|entry| self.read_object(entry, max_buyers))
            .buffer_unordered(self.objects_in_flight)
            .try_fold(
                FeatureAccumulator::with_max_buyers(max_buyers),
                |mut total, part| async move {
                    total.merge(part);
                    match total.overflow() {
                        Some(what) => {
                            Err(too_large(what, max_buyers as u64 + 1, max_buyers as u64))
                        }
                        None => Ok(total),
                    }
                },
            )
            .await?;
        Ok(total.finish())
    }

    /// Streams one object into an accumulator. An object listed in the catalog but gone from
    /// S3 was deleted and its delete event is not cataloged yet: it no longer belongs to the
    /// dataset, so it is skipped (metadata-sync will mark the score stale when the delete
    /// arrives).
    async fn read_object(
        &self,
        entry: CatalogEntry,
        max_buyers: usize,
    ) -> Result<FeatureAccumulator, Error> {
        let key = entry.key();
        let output = match self
            .s3
            .get_object()
            .bucket(&entry.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                tracing::warn!(bucket = %entry.bucket, key = %key, "cataloged object is gone from S3; skipped");
                return Ok(FeatureAccumulator::with_max_buyers(max_buyers));
            }
            Err(err) => return Err(shared::Error::aws("S3", "GetObject", err).into()),
        };

        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
        let parser = tokio::task::spawn_blocking(move || {
            let mut acc = FeatureAccumulator::with_max_buyers(max_buyers);
            let result = extract(ChannelReader::new(rx), &mut acc);
            (acc, result)
        });

        let mut body = output.body;
        let mut bytes = 0u64;
        let mut broke_off = None;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    bytes += chunk.len() as u64;
                    if tx.send(Ok(chunk)).await.is_err() {
                        break; // the parser stopped (corrupt data): its error tells why
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    let _ = tx
                        .send(Err(io::Error::other("the download broke off")))
                        .await;
                    broke_off = Some(err);
                    break;
                }
            }
        }
        drop(tx);
        let (mut acc, result) = parser.await?;
        if let Some(source) = broke_off {
            return Err(Error::Read {
                bucket: entry.bucket,
                key,
                source: Box::new(source),
            });
        }
        if let Err(source) = result {
            return Err(Error::Corrupt {
                bucket: entry.bucket,
                key,
                source,
            });
        }
        acc.add_object(bytes);
        Ok(acc)
    }
}

impl FeatureSource for LakeSource {
    fn gather<'a>(
        &'a self,
        subject: &'a SubjectId,
    ) -> BoxFuture<'a, Result<FeatureSummary, Error>> {
        Box::pin(self.gather_features(subject))
    }
}

impl<T: FeatureSource + ?Sized> FeatureSource for Arc<T> {
    fn gather<'a>(
        &'a self,
        subject: &'a SubjectId,
    ) -> BoxFuture<'a, Result<FeatureSummary, Error>> {
        (**self).gather(subject)
    }
}

/// gzip's magic bytes: an object that starts with them is gzipped.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Feeds one object's bytes to `acc`: gzip (recognised by its magic bytes, whatever the
/// object's name; concatenated members too) or plain NDJSON. Blocking.
pub fn extract<R: Read>(mut reader: R, acc: &mut FeatureAccumulator) -> io::Result<()> {
    // The magic bytes may arrive in two reads (a download's first chunk can be a single byte):
    // read both before deciding, then put them back in front.
    let mut head = [0u8; GZIP_MAGIC.len()];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let is_gzip = head == GZIP_MAGIC;
    let reader = BufReader::with_capacity(READ_BUFFER, (&head[..filled]).chain(reader));
    if is_gzip {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        acc.push_reader(BufReader::with_capacity(READ_BUFFER, decoder))
    } else {
        acc.push_reader(reader)
    }
}

/// A blocking [`Read`] over chunks sent from an async task. The sender closing is the end of
/// the object; an `Err` chunk is returned as the read error.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(err)) => return Err(err),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LINE: &str = r#"{"ts":"2026-11-01T12:00:00Z","amount":10,"status":"paid","buyer":"b","card_country":"JP","ip_country":"JP"}"#;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn dataset_objects_are_ndjson_or_gzipped_ndjson() {
        assert!(is_dataset_object("2026/11.ndjson"));
        assert!(is_dataset_object("a.ndjson.gz"));
        assert!(!is_dataset_object("_SUCCESS"));
        assert!(!is_dataset_object("model.json"));
    }

    #[test]
    fn gzip_is_recognised_by_its_magic_bytes_and_members_concatenate() {
        let plain = format!("{LINE}\n{LINE}\nbad\n");
        let mut two_members = gzip(plain.as_bytes());
        two_members.extend(gzip(format!("{LINE}\n").as_bytes()));
        let mut acc = FeatureAccumulator::new();
        extract(&two_members[..], &mut acc).unwrap();
        assert_eq!((acc.rows(), acc.malformed_lines()), (3, 1));

        let mut acc = FeatureAccumulator::new();
        extract(plain.as_bytes(), &mut acc).unwrap();
        assert_eq!((acc.rows(), acc.malformed_lines()), (2, 1));
    }

    /// A reader that hands out at most `chunk` bytes a read, as a download does.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Regression: the magic bytes were looked for in the first read only, so a gzipped object
    /// whose first chunk was one byte long was read as text (every line malformed).
    #[test]
    fn gzip_is_recognised_when_its_magic_bytes_arrive_one_at_a_time() {
        let plain = format!("{LINE}\n{LINE}\nbad\n");
        let gzipped = gzip(plain.as_bytes());
        for chunk in [1, 2, 3, 7, 64 * 1024] {
            for data in [plain.as_bytes(), &gzipped[..]] {
                let mut acc = FeatureAccumulator::new();
                extract(Chunked { data, chunk }, &mut acc).unwrap();
                assert_eq!(
                    (acc.rows(), acc.malformed_lines()),
                    (2, 1),
                    "chunks of {chunk}"
                );
            }
        }
        for tiny in [&b""[..], b"\x1f", b"\n", b"{"] {
            let mut acc = FeatureAccumulator::new();
            extract(
                Chunked {
                    data: tiny,
                    chunk: 1,
                },
                &mut acc,
            )
            .unwrap();
            assert_eq!(acc.rows(), 0);
        }
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut data = gzip(format!("{LINE}\n").repeat(1000).as_bytes());
        let len = data.len();
        data[len / 2..].iter_mut().for_each(|b| *b = !*b);
        let mut acc = FeatureAccumulator::new();
        assert!(extract(&data[..], &mut acc).is_err());
    }

    #[tokio::test]
    async fn channel_reader_streams_chunks_and_reports_a_broken_download() {
        let (tx, rx) = mpsc::channel(2);
        let parser = tokio::task::spawn_blocking(move || {
            let mut acc = FeatureAccumulator::new();
            let result = extract(ChannelReader::new(rx), &mut acc);
            (acc.rows(), result.is_ok())
        });
        let data = format!("{LINE}\n").repeat(100);
        for chunk in data.as_bytes().chunks(7) {
            tx.send(Ok(Bytes::copy_from_slice(chunk))).await.unwrap();
        }
        drop(tx);
        assert_eq!(parser.await.unwrap(), (100, true));

        let (tx, rx) = mpsc::channel(2);
        let parser = tokio::task::spawn_blocking(move || {
            extract(ChannelReader::new(rx), &mut FeatureAccumulator::new()).is_err()
        });
        tx.send(Ok(Bytes::from(format!("{LINE}\n")))).await.unwrap();
        tx.send(Err(io::Error::other("reset"))).await.unwrap();
        assert!(parser.await.unwrap());
    }
}
