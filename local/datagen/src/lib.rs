//! Seeded generator of realistic transaction datasets, for tests, the local demo and the
//! benchmarks. A dev tool: it lives outside the Lambda functions, which never depend on it.
//!
//! - [`plan`] picks `n` subjects (`shop-0001`, ...) with a shop-like size distribution: one
//!   large subject in every 25 (20k..100k transactions, several objects), the rest log-normal
//!   around 300 (20..20k); profiles mostly [`Profile::Normal`], with `shop-0002`..`shop-0005`
//!   one of each risky profile and about one in ten of the rest risky; about half gzipped, some
//!   with a few malformed lines.
//! - [`lines`] / [`files`] generate a subject's NDJSON (the format of docs/MODEL.md, "Input: the
//!   data lake"), deterministically from `(seed, subject id)`: the same seed always gives the same
//!   bytes (with the same `rand` version).
//! - [`write_dir`] writes them under `DIR/datasets/{subject}/part-NNNN.ndjson[.gz]` (the bucket
//!   layout, so `aws s3 sync DIR s3://bucket/` uploads them as they are).
//! - [`seed`] uploads them to a bucket **and** writes their catalog entries, so compute finds
//!   them without waiting for metadata-sync. Seeded entries carry the lowest sequencer (`"0"`),
//!   so any real S3 event for the same key replaces them.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration as Span, FixedOffset, SecondsFormat, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use shared::catalog_store::{split_key, CatalogEntry, CatalogStore, Sequencer};
use shared::domain::SubjectId;

/// What can go wrong generating or seeding data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An S3 upload or the catalog write.
    #[error(transparent)]
    Shared(#[from] shared::Error),

    /// A generator task (on a blocking thread) panicked or was cancelled.
    #[error("a generator task did not finish")]
    Task(#[from] tokio::task::JoinError),

    /// Local files ([`write_dir`]).
    #[error("I/O on {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The kind of shop a subject behaves like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A healthy shop: few refunds, rare chargebacks, daytime orders, domestic cards.
    Normal,
    /// Many chargebacks (about 8%).
    Chargebacks,
    /// Many refunds (about a third).
    RefundAbuse,
    /// Card country and IP country disagree on about half the orders.
    CountryMismatch,
    /// Bursts of dozens of orders in one night hour from a handful of buyers with foreign cards.
    NightBursts,
}

impl Profile {
    pub const RISKY: [Profile; 4] = [
        Profile::Chargebacks,
        Profile::RefundAbuse,
        Profile::CountryMismatch,
        Profile::NightBursts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Normal => "normal",
            Profile::Chargebacks => "chargebacks",
            Profile::RefundAbuse => "refund-abuse",
            Profile::CountryMismatch => "country-mismatch",
            Profile::NightBursts => "night-bursts",
        }
    }

    /// Probabilities of paid, refunded, chargeback, cancelled.
    fn statuses(self) -> [f64; 4] {
        match self {
            Profile::Normal => [0.93, 0.03, 0.003, 0.037],
            Profile::Chargebacks => [0.84, 0.04, 0.08, 0.04],
            Profile::RefundAbuse => [0.62, 0.32, 0.01, 0.05],
            Profile::CountryMismatch => [0.90, 0.04, 0.02, 0.04],
            Profile::NightBursts => [0.88, 0.05, 0.03, 0.04],
        }
    }

    /// Probability that the card is foreign, and that the IP country differs from the card's.
    fn foreignness(self) -> (f64, f64) {
        match self {
            Profile::CountryMismatch => (0.45, 0.55),
            _ => (0.04, 0.03),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Profile::Normal]
            .into_iter()
            .chain(Profile::RISKY)
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown profile {s:?}"))
    }
}

/// One subject to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectSpec {
    pub subject_id: SubjectId,
    /// Transactions (valid lines).
    pub rows: usize,
    pub profile: Profile,
    /// Objects the rows are split over (at least 1).
    pub files: usize,
    pub gzip: bool,
    /// Extra malformed lines, per 1000 rows.
    pub malformed_per_mille: u32,
}

impl SubjectSpec {
    /// One plain object (one more per 50k rows), no malformed lines.
    pub fn new(subject_id: SubjectId, rows: usize, profile: Profile) -> Self {
        Self {
            subject_id,
            rows,
            profile,
            files: 1 + rows / 50_000,
            gzip: false,
            malformed_per_mille: 0,
        }
    }
}

/// A realistic mix of `subjects` subjects (see the module doc).
pub fn plan(subjects: usize, seed: u64) -> Vec<SubjectSpec> {
    let mut rng = StdRng::seed_from_u64(seed);
    let small = LogNormal::new(300f64.ln(), 1.0).expect("valid parameters");
    (0..subjects)
        .map(|i| {
            let subject_id = SubjectId::parse(&format!("shop-{:04}", i + 1)).expect("valid id");
            let rows = if i % 25 == 0 {
                // log-uniform in 20k..100k
                (20_000f64 * 5f64.powf(rng.random::<f64>())) as usize
            } else {
                small.sample(&mut rng).clamp(20.0, 20_000.0) as usize
            };
            let profile = match i {
                1..=4 => Profile::RISKY[i - 1],
                _ if i > 4 && rng.random_bool(0.1) => {
                    Profile::RISKY[rng.random_range(0..Profile::RISKY.len())]
                }
                _ => Profile::Normal,
            };
            let mut spec = SubjectSpec::new(subject_id, rows, profile);
            spec.gzip = rng.random_bool(0.5);
            spec.malformed_per_mille = if rng.random_bool(0.2) {
                rng.random_range(1..=5)
            } else {
                0
            };
            spec
        })
        .collect()
}

/// Home country, its UTC offset, currency, median amount and decimals.
const COUNTRIES: [(&str, i32, &str, f64, usize); 8] = [
    ("JP", 9 * 3600, "JPY", 3000.0, 0),
    ("US", -5 * 3600, "USD", 45.0, 2),
    ("DE", 3600, "EUR", 40.0, 2),
    ("GB", 0, "GBP", 35.0, 2),
    ("FR", 3600, "EUR", 40.0, 2),
    ("BR", -3 * 3600, "BRL", 120.0, 2),
    ("IN", 5 * 3600 + 1800, "INR", 1500.0, 0),
    ("AU", 10 * 3600, "AUD", 60.0, 2),
];

/// Relative order volume per local hour (a shop's day: quiet nights, busy evenings).
const HOUR_WEIGHTS: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0, 5.0, 5.0, 5.0, 5.0, 6.0, 7.0,
    8.0, 8.0, 6.0, 4.0, 2.0,
];

/// Data covers the 90 days before this instant.
const DAYS: i64 = 90;

fn period_end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// A subject's lines: `spec.rows` transactions plus the malformed ones, deterministic from
/// `(seed, subject id)`.
pub fn lines(spec: &SubjectSpec, seed: u64) -> impl Iterator<Item = String> {
    Generator::new(spec, seed)
}

struct Generator {
    rng: StdRng,
    profile: Profile,
    country: (&'static str, FixedOffset, &'static str, usize),
    amounts: LogNormal<f64>,
    hour_total: f64,
    buyers: usize,
    start: DateTime<Utc>,
    rows_left: usize,
    malformed_left: usize,
    /// Night bursts: rows left in the current burst, its hour and its buyers.
    burst_rows_left: usize,
    burst_rows_total: usize,
    burst_start: DateTime<Utc>,
    burst_buyers: u64,
}

impl Generator {
    fn new(spec: &SubjectSpec, seed: u64) -> Self {
        let mut subject_hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in spec.subject_id.as_str().bytes() {
            subject_hash = (subject_hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut rng = StdRng::seed_from_u64(seed ^ subject_hash);
        let (code, offset, currency, median, decimals) =
            COUNTRIES[rng.random_range(0..COUNTRIES.len())];
        let burst_rows_total = if spec.profile == Profile::NightBursts {
            spec.rows * 35 / 100
        } else {
            0
        };
        Self {
            profile: spec.profile,
            country: (
                code,
                FixedOffset::east_opt(offset).expect("valid offset"),
                currency,
                decimals,
            ),
            amounts: LogNormal::new(median.ln(), 0.8).expect("valid parameters"),
            hour_total: HOUR_WEIGHTS.iter().sum(),
            buyers: (spec.rows / 2).max(3),
            start: period_end() - Span::days(DAYS),
            rows_left: spec.rows,
            malformed_left: spec.rows * spec.malformed_per_mille as usize / 1000,
            burst_rows_left: 0,
            burst_rows_total,
            burst_start: period_end(),
            burst_buyers: 0,
            rng,
        }
    }

    fn transaction(&mut self) -> String {
        let (home, offset, currency, decimals) = self.country;
        let in_burst = self.burst_rows_total > 0 && {
            if self.burst_rows_left == 0 && self.rng.random_bool(0.35) {
                self.start_burst();
            }
            self.burst_rows_left > 0
        };
        let (ts, buyer, (foreign_card, foreign_ip)) = if in_burst {
            self.burst_rows_left -= 1;
            self.burst_rows_total = self.burst_rows_total.saturating_sub(1);
            let ts = self.burst_start + Span::seconds(self.rng.random_range(0..3600));
            let buyer = format!(
                "b-x{}-{}",
                self.burst_buyers,
                self.rng.random_range(0..6u32)
            );
            (ts, buyer, (0.6, 0.5))
        } else {
            let day = self.rng.random_range(0..DAYS);
            let hour = self.hour();
            let local_midnight =
                self.start + Span::days(day) - Span::seconds(offset.local_minus_utc().into());
            let ts = local_midnight
                + Span::hours(hour as i64)
                + Span::seconds(self.rng.random_range(0..3600));
            // Repeat customers: low buyer numbers come back often.
            let u: f64 = self.rng.random();
            let buyer = format!("b-{}", (self.buyers as f64 * u * u) as usize);
            (ts, buyer, self.profile.foreignness())
        };
        let card = if self.rng.random_bool(foreign_card) {
            self.other_country(home)
        } else {
            home
        };
        let ip = if self.rng.random_bool(foreign_ip) {
            self.other_country(card)
        } else {
            card
        };
        let status = {
            let p = self.profile.statuses();
            let u: f64 = self.rng.random();
            if u < p[0] {
                "paid"
            } else if u < p[0] + p[1] {
                "refunded"
            } else if u < p[0] + p[1] + p[2] {
                "chargeback"
            } else {
                "cancelled"
            }
        };
        let amount = self.amounts.sample(&mut self.rng).min(1e9);
        let mut line = String::with_capacity(192);
        let _ = write!(
            line,
            r#"{{"ts":"{}","amount":{amount:.decimals$},"currency":"{currency}","status":"{status}","buyer":"{buyer}","card_country":"{card}","ip_country":"{ip}"}}"#,
            ts.with_timezone(&offset)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        line
    }

    fn start_burst(&mut self) {
        let (_, offset, _, _) = self.country;
        let size = self.rng.random_range(20..=80).min(self.burst_rows_total);
        let day = self.rng.random_range(0..DAYS);
        let local_hour = self.rng.random_range(1..=4);
        self.burst_start = self.start + Span::days(day) + Span::hours(local_hour)
            - Span::seconds(offset.local_minus_utc().into());
        self.burst_rows_left = size;
        self.burst_buyers += 1;
    }

    fn hour(&mut self) -> usize {
        let mut pick = self.rng.random::<f64>() * self.hour_total;
        for (hour, weight) in HOUR_WEIGHTS.iter().enumerate() {
            if pick < *weight {
                return hour;
            }
            pick -= weight;
        }
        23
    }

    fn other_country(&mut self, not: &'static str) -> &'static str {
        loop {
            let (code, ..) = COUNTRIES[self.rng.random_range(0..COUNTRIES.len())];
            if code != not {
                return code;
            }
        }
    }

    fn malformed(&mut self, valid: String) -> String {
        match self.rng.random_range(0..3) {
            0 => valid[..valid.len() / 2].to_owned(),
            1 => valid.replace("\"status\":\"", "\"status\":\"x"),
            _ => "-- export interrupted --".to_owned(),
        }
    }
}

impl Iterator for Generator {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        let total = self.rows_left + self.malformed_left;
        if total == 0 {
            return None;
        }
        let line = self.transaction();
        if self.rng.random_range(0..total) < self.malformed_left {
            self.malformed_left -= 1;
            Some(self.malformed(line))
        } else {
            self.rows_left -= 1;
            Some(line)
        }
    }
}

/// One generated object.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// The object key: `datasets/{subject}/part-NNNN.ndjson[.gz]`.
    pub key: String,
    pub content: Vec<u8>,
}

fn file_key(spec: &SubjectSpec, part: usize) -> String {
    let ext = if spec.gzip { "ndjson.gz" } else { "ndjson" };
    format!("{}/part-{part:04}.{ext}", spec.subject_id.dataset_dir())
}

/// Writes a subject's lines, split into `spec.files` parts, through `open(part)`.
fn write_parts<W: Write>(
    spec: &SubjectSpec,
    seed: u64,
    mut open: impl FnMut(usize) -> std::io::Result<W>,
) -> std::io::Result<Vec<W>> {
    let parts = spec.files.max(1);
    let total = spec.rows + spec.rows * spec.malformed_per_mille as usize / 1000;
    let per_part = total.div_ceil(parts).max(1);
    let mut writers = Vec::with_capacity(parts);
    let mut lines = lines(spec, seed);
    for part in 0..parts {
        let mut writer = open(part)?;
        let mut n = 0;
        while n < per_part || part == parts - 1 {
            match lines.next() {
                Some(line) => {
                    writer.write_all(line.as_bytes())?;
                    writer.write_all(b"\n")?;
                    n += 1;
                }
                None => break,
            }
        }
        writers.push(writer);
    }
    Ok(writers)
}

/// A subject's objects, in memory (gzipped when `spec.gzip`).
pub fn files(spec: &SubjectSpec, seed: u64) -> Vec<DataFile> {
    let contents = if spec.gzip {
        write_parts(spec, seed, |_| {
            Ok(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            ))
        })
        .and_then(|parts| parts.into_iter().map(|gz| gz.finish()).collect())
    } else {
        write_parts(spec, seed, |_| Ok(Vec::new()))
    }
    .expect("writing to memory cannot fail");
    contents
        .into_iter()
        .enumerate()
        .map(|(part, content)| DataFile {
            key: file_key(spec, part),
            content,
        })
        .collect()
}

/// Writes every subject's objects under `dir` (the bucket layout). Returns the files written.
pub fn write_dir(dir: &Path, specs: &[SubjectSpec], seed: u64) -> Result<Vec<PathBuf>, Error> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    let mut written = Vec::new();
    for spec in specs {
        let paths: Vec<PathBuf> = (0..spec.files.max(1))
            .map(|part| dir.join(file_key(spec, part)))
            .collect();
        let parent = paths[0].parent().expect("a file has a parent");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let open = |part: usize| -> std::io::Result<Box<dyn Write>> {
            let file = std::io::BufWriter::new(std::fs::File::create(&paths[part])?);
            Ok(if spec.gzip {
                Box::new(flate2::write::GzEncoder::new(
                    file,
                    flate2::Compression::default(),
                ))
            } else {
                Box::new(file)
            })
        };
        let writers = write_parts(spec, seed, open).map_err(io(parent))?;
        for mut writer in writers {
            writer.flush().map_err(io(parent))?;
        }
        written.extend(paths);
    }
    Ok(written)
}

/// What [`seed`] put in place for one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Seeded {
    pub subject_id: SubjectId,
    pub profile: Profile,
    pub rows: usize,
    pub objects: usize,
    pub bytes: u64,
}

/// Uploads every subject's objects to `bucket` and writes their catalog entries (one bulk
/// [`CatalogStore::apply`]), so compute can score them at once. Objects are generated on
/// blocking threads and uploaded a few at a time.
pub async fn seed(
    s3: &aws_sdk_s3::Client,
    catalog: &CatalogStore,
    bucket: &str,
    specs: &[SubjectSpec],
    seed: u64,
) -> Result<Vec<Seeded>, Error> {
    let uploads = futures::stream::iter(specs.iter().cloned())
        .map(|spec| async move {
            let generated = {
                let spec = spec.clone();
                tokio::task::spawn_blocking(move || files(&spec, seed)).await?
            };
            let mut entries = Vec::with_capacity(generated.len());
            let mut bytes = 0u64;
            for file in &generated {
                let size = file.content.len() as i64;
                bytes += size as u64;
                let output = s3
                    .put_object()
                    .bucket(bucket)
                    .key(&file.key)
                    .content_type("application/x-ndjson")
                    .body(file.content.clone().into())
                    .send()
                    .await
                    .map_err(|e| shared::Error::aws("S3", "PutObject", e))?;
                let (dir, name) = split_key(&file.key);
                entries.push(CatalogEntry {
                    dir,
                    name,
                    bucket: bucket.to_owned(),
                    size,
                    etag: output.e_tag,
                    content_type: Some("application/x-ndjson".to_owned()),
                    last_modified: Some(Utc::now()),
                    user_metadata: Default::default(),
                    sequencer: Sequencer::new("0"),
                    deleted: false,
                    expires_at: None,
                });
            }
            let seeded = Seeded {
                subject_id: spec.subject_id.clone(),
                profile: spec.profile,
                rows: spec.rows,
                objects: generated.len(),
                bytes,
            };
            Ok::<_, Error>((seeded, entries))
        })
        .buffered(4)
        .try_collect::<Vec<_>>()
        .await?;
    let mut seeded = Vec::with_capacity(uploads.len());
    let mut entries = Vec::new();
    for (subject, subject_entries) in uploads {
        seeded.push(subject);
        entries.extend(subject_entries);
    }
    catalog.apply(entries).await?;
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use compute::features::{names, FeatureAccumulator};

    fn features_of(spec: &SubjectSpec, seed: u64) -> shared::domain::FeatureSummary {
        let mut acc = FeatureAccumulator::new();
        for file in files(spec, seed) {
            compute::source::extract(&file.content[..], &mut acc).unwrap();
        }
        acc.finish()
    }

    fn spec(rows: usize, profile: Profile) -> SubjectSpec {
        SubjectSpec::new(SubjectId::parse("shop-t").unwrap(), rows, profile)
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let s = spec(500, Profile::Normal);
        let a: Vec<String> = lines(&s, 1).collect();
        assert_eq!(a, lines(&s, 1).collect::<Vec<_>>());
        assert_ne!(a, lines(&s, 2).collect::<Vec<_>>());
        assert_eq!(a.len(), 500);
    }

    #[test]
    fn rows_split_over_files_and_malformed_lines_are_added() {
        let mut s = spec(1000, Profile::Normal);
        s.files = 3;
        s.malformed_per_mille = 5;
        s.gzip = true;
        let generated = files(&s, 7);
        assert_eq!(generated.len(), 3);
        assert!(generated[0].key.ends_with("/part-0000.ndjson.gz"));
        let summary = features_of(&s, 7);
        assert_eq!((summary.rows, summary.malformed_lines), (1000, 5));
        assert_eq!(summary.objects, 0); // extract alone does not count objects
    }

    #[test]
    fn risky_profiles_show_in_their_features() {
        let normal = features_of(&spec(3000, Profile::Normal), 3);
        let f = |s: &shared::domain::FeatureSummary, n: &str| s.features[n];
        let chargebacks = features_of(&spec(3000, Profile::Chargebacks), 3);
        assert!(f(&chargebacks, names::CHARGEBACK_RATE) > 0.05);
        assert!(f(&normal, names::CHARGEBACK_RATE) < 0.01);
        let refunds = features_of(&spec(3000, Profile::RefundAbuse), 3);
        assert!(f(&refunds, names::REFUND_RATE) > 0.25);
        let mismatch = features_of(&spec(3000, Profile::CountryMismatch), 3);
        assert!(f(&mismatch, names::COUNTRY_MISMATCH_RATE) > 0.4);
        assert!(f(&normal, names::COUNTRY_MISMATCH_RATE) < 0.1);
        let night = features_of(&spec(3000, Profile::NightBursts), 3);
        assert!(
            f(&night, names::NIGHT_SHARE) > 0.3,
            "{}",
            f(&night, names::NIGHT_SHARE)
        );
        assert!(f(&night, names::MAX_ORDERS_PER_HOUR) >= 20.0);
        assert!(f(&normal, names::NIGHT_SHARE) < 0.08);
    }

    #[test]
    fn plan_has_a_few_large_subjects_and_every_risky_profile() {
        let specs = plan(100, 42);
        assert_eq!(specs.len(), 100);
        let large = specs.iter().filter(|s| s.rows >= 20_000).count();
        assert!((4..=8).contains(&large), "{large} large subjects");
        let median = {
            let mut rows: Vec<usize> = specs.iter().map(|s| s.rows).collect();
            rows.sort();
            rows[50]
        };
        assert!((100..2_000).contains(&median), "median {median}");
        for risky in Profile::RISKY {
            assert!(specs.iter().any(|s| s.profile == risky));
        }
        assert_eq!(specs[1].profile, Profile::Chargebacks);
        assert_eq!(plan(100, 42), specs);
    }

    #[test]
    fn write_dir_mirrors_the_bucket_layout() {
        let dir = std::env::temp_dir().join(format!("datagen-{}", ulid_like()));
        let mut a = spec(120, Profile::Normal);
        a.gzip = true;
        let written = write_dir(&dir, &[a.clone()], 5).unwrap();
        assert_eq!(written, [dir.join("datasets/shop-t/part-0000.ndjson.gz")]);
        let on_disk = std::fs::read(&written[0]).unwrap();
        let mut acc = FeatureAccumulator::new();
        compute::source::extract(&on_disk[..], &mut acc).unwrap();
        assert_eq!(acc.finish(), features_of(&a, 5));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_embedded_model_scores_normal_shops_low_and_risky_ones_higher() {
        use compute::model::Model;
        use shared::domain::Band;
        let model = compute::model::LogisticModel::embedded();
        for seed in 1..=3 {
            let score = |p| model.score(&features_of(&spec(400, p), seed)).unwrap();
            let normal = score(Profile::Normal);
            assert_eq!(normal.band, Band::Low, "seed {seed}: {normal:?}");
            for risky in Profile::RISKY {
                let result = score(risky);
                assert_ne!(result.band, Band::Low, "seed {seed} {risky}: {result:?}");
                assert!(result.score > normal.score);
            }
        }
    }

    fn ulid_like() -> String {
        shared::domain::ClaimId::new().0
    }
}
