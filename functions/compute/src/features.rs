//! Feature extraction from a subject's transactions: a pure, incremental accumulator.
//!
//! Lines are pushed one at a time ([`FeatureAccumulator::push_line`]) or read from any
//! [`BufRead`] ([`FeatureAccumulator::push_reader`]), accumulators of different objects are
//! [merged](FeatureAccumulator::merge), and [`FeatureAccumulator::finish`] yields the
//! [`FeatureSummary`] the model scores. No I/O of its own, so it is unit-testable and
//! benchmarkable without AWS; the compute function feeds it from S3 on a blocking thread.
//!
//! ## Input: one transaction per line (docs/MODEL.md, "Input: the data lake")
//! `{"ts":"2026-11-01T12:00:00+09:00","amount":1200,"currency":"JPY","status":"paid","buyer":"b-91","card_country":"JP","ip_country":"JP"}`
//!
//! A line is a transaction when it is a JSON object with `ts` (RFC 3339, any UTC offset),
//! `amount` (a number, 0 <= amount <= 1e12), `status` (`paid` | `refunded` | `chargeback` |
//! `cancelled`) and a non-empty `buyer`; `card_country` and `ip_country` are optional, other
//! fields (`currency`, ...) are ignored. Any other non-blank line is counted in
//! `malformed_lines` and skipped; blank lines are ignored; a line longer than
//! [`MAX_LINE_BYTES`] (not counting its `\n` or `\r\n`) is malformed, whatever it holds.
//!
//! ## Features (names as in [`FeatureSummary::features`])
//! | feature | definition |
//! |---|---|
//! | `order_count` | transactions (valid lines), any status |
//! | `refund_rate` / `chargeback_rate` / `cancel_rate` | share of transactions with that status |
//! | `max_orders_per_hour` | most transactions in one clock hour (UTC hour buckets) |
//! | `distinct_buyer_ratio` | distinct `buyer` values / transactions |
//! | `country_mismatch_rate` | share of `card_country != ip_country` among transactions that carry both |
//! | `night_share` | share of transactions between 00:00 and 05:59 in the timestamp's own UTC offset (the buyer's local time when the lake records it) |
//! | `amount_mean`, `amount_std`, `amount_max` | amount statistics (population standard deviation), in the shop's currency |
//! | `amount_cv` | `amount_std / amount_mean` (scale-free) |
//! | `amount_max_to_mean` | `amount_max / amount_mean` (scale-free) |
//!
//! Rates are 0 when their denominator is 0.
//!
//! ## Determinism
//! Every running total is exact and order-independent (integer counts, amounts summed in
//! integer hundredths, a set of 64-bit FNV-1a buyer hashes, per-hour counts), so the features —
//! and the score — do not depend on the order of lines, objects, or merges, nor on whether an
//! object was gzipped.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufRead};

use chrono::{DateTime, Timelike};
use serde::{Deserialize, Deserializer};

use shared::domain::FeatureSummary;

/// Feature names, as they appear in [`FeatureSummary::features`] and in model artifacts.
pub mod names {
    pub const ORDER_COUNT: &str = "order_count";
    pub const REFUND_RATE: &str = "refund_rate";
    pub const CHARGEBACK_RATE: &str = "chargeback_rate";
    pub const CANCEL_RATE: &str = "cancel_rate";
    pub const MAX_ORDERS_PER_HOUR: &str = "max_orders_per_hour";
    pub const DISTINCT_BUYER_RATIO: &str = "distinct_buyer_ratio";
    pub const COUNTRY_MISMATCH_RATE: &str = "country_mismatch_rate";
    pub const NIGHT_SHARE: &str = "night_share";
    pub const AMOUNT_MEAN: &str = "amount_mean";
    pub const AMOUNT_STD: &str = "amount_std";
    pub const AMOUNT_MAX: &str = "amount_max";
    pub const AMOUNT_CV: &str = "amount_cv";
    pub const AMOUNT_MAX_TO_MEAN: &str = "amount_max_to_mean";

    /// Every feature the accumulator produces.
    pub const ALL: [&str; 13] = [
        ORDER_COUNT,
        REFUND_RATE,
        CHARGEBACK_RATE,
        CANCEL_RATE,
        MAX_ORDERS_PER_HOUR,
        DISTINCT_BUYER_RATIO,
        COUNTRY_MISMATCH_RATE,
        NIGHT_SHARE,
        AMOUNT_MEAN,
        AMOUNT_STD,
        AMOUNT_MAX,
        AMOUNT_CV,
        AMOUNT_MAX_TO_MEAN,
    ];
}

/// Longer lines (not counting the line terminator, `\n` or `\r\n`) are malformed, and are
/// skipped without being held in memory whole.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Largest accepted amount; larger ones make the line malformed (and keep the exact sums far
/// from overflow).
pub const MAX_AMOUNT: f64 = 1e12;

/// Night is local hours `0..NIGHT_END_HOUR`.
pub const NIGHT_END_HOUR: u32 = 6;

/// Amounts are summed exactly in these units (hundredths).
const AMOUNT_SCALE: f64 = 100.0;

/// Distinct buyers kept by default (8 bytes each, plus the hash set's overhead: about 100 MB at
/// this many). Over the limit, the accumulator reports [`FeatureAccumulator::overflow`].
pub const DEFAULT_MAX_DISTINCT_BUYERS: usize = 5_000_000;

/// Distinct clock hours kept (about 23 years of hourly buckets): timestamps spread wider than
/// that are not a shop's history, and would otherwise grow the hour table without bound.
pub const MAX_DISTINCT_HOURS: usize = 200_000;

/// The running totals of one or more objects' transactions. Memory is bounded: the distinct
/// buyers and hours it keeps are capped, and going over a cap is reported, not absorbed.
#[derive(Debug, Clone)]
pub struct FeatureAccumulator {
    objects: u64,
    bytes: u64,
    rows: u64,
    malformed: u64,
    refunded: u64,
    chargebacks: u64,
    cancelled: u64,
    night: u64,
    countries_known: u64,
    country_mismatches: u64,
    amount_sum: i128,
    amount_square_sum: i128,
    amount_max: i64,
    buyers: HashSet<u64, BuildHasherDefault<MixHasher>>,
    hours: HashMap<i64, u32, BuildHasherDefault<MixHasher>>,
    max_buyers: usize,
    overflow: Option<&'static str>,
}

impl Default for FeatureAccumulator {
    fn default() -> Self {
        Self::with_max_buyers(DEFAULT_MAX_DISTINCT_BUYERS)
    }
}

impl FeatureAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// An accumulator that keeps at most `max_buyers` distinct buyers.
    pub fn with_max_buyers(max_buyers: usize) -> Self {
        Self {
            objects: 0,
            bytes: 0,
            rows: 0,
            malformed: 0,
            refunded: 0,
            chargebacks: 0,
            cancelled: 0,
            night: 0,
            countries_known: 0,
            country_mismatches: 0,
            amount_sum: 0,
            amount_square_sum: 0,
            amount_max: 0,
            buyers: HashSet::default(),
            hours: HashMap::default(),
            max_buyers,
            overflow: None,
        }
    }

    /// What went over its cap (`"distinct buyers"`, `"distinct hours"`), if anything: the
    /// features would not describe the data, so the caller refuses the subject.
    pub fn overflow(&self) -> Option<&'static str> {
        self.overflow
    }

    /// Records that one object of `bytes` (as stored) was read.
    pub fn add_object(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }

    /// Valid transactions so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Malformed lines so far.
    pub fn malformed_lines(&self) -> u64 {
        self.malformed
    }

    /// Pushes one line (with or without its line terminator). Returns whether it was a
    /// transaction; blank lines are ignored, anything else that is not a transaction is counted
    /// as malformed.
    pub fn push_line(&mut self, line: &[u8]) -> bool {
        if without_terminator(line).len() > MAX_LINE_BYTES {
            self.malformed += 1;
            return false;
        }
        let line = trim_ascii(line);
        if line.is_empty() {
            return false;
        }
        match parse(line) {
            Some(tx) => {
                self.add(tx);
                true
            }
            None => {
                self.malformed += 1;
                false
            }
        }
    }

    /// Pushes every line of `reader`, holding at most [`MAX_LINE_BYTES`] (+2, for a `\r\n`) of
    /// a line in memory; the same as [`push_line`](Self::push_line) for each line. I/O errors
    /// (an interrupted download, corrupt gzip) are returned as they are.
    pub fn push_reader<R: BufRead>(&mut self, mut reader: R) -> io::Result<()> {
        let mut line = Vec::with_capacity(1024);
        let limit = MAX_LINE_BYTES + 2;
        loop {
            line.clear();
            let read =
                io::Read::take(reader.by_ref(), limit as u64).read_until(b'\n', &mut line)?;
            if read == 0 {
                return Ok(());
            }
            if line.last() != Some(&b'\n') && line.len() == limit {
                // No line end within MAX + 2 bytes: too long whatever follows. Count it once
                // and skip to the end of the line.
                self.malformed += 1;
                skip_line(&mut reader)?;
                continue;
            }
            self.push_line(&line);
        }
    }

    /// Adds another accumulator's totals (for objects read in parallel). Commutative and
    /// associative: the result does not depend on the order of merges.
    pub fn merge(&mut self, other: FeatureAccumulator) {
        self.objects += other.objects;
        self.bytes += other.bytes;
        self.rows += other.rows;
        self.malformed += other.malformed;
        self.refunded += other.refunded;
        self.chargebacks += other.chargebacks;
        self.cancelled += other.cancelled;
        self.night += other.night;
        self.countries_known += other.countries_known;
        self.country_mismatches += other.country_mismatches;
        self.amount_sum = self.amount_sum.saturating_add(other.amount_sum);
        self.amount_square_sum = self
            .amount_square_sum
            .saturating_add(other.amount_square_sum);
        self.amount_max = self.amount_max.max(other.amount_max);
        let mut buyers = other.buyers;
        if self.buyers.len() < buyers.len() {
            std::mem::swap(&mut self.buyers, &mut buyers);
        }
        self.buyers.extend(buyers);
        for (hour, count) in other.hours {
            *self.hours.entry(hour).or_default() += count;
        }
        self.overflow = self.overflow.or(other.overflow);
        if self.buyers.len() > self.max_buyers {
            self.overflow.get_or_insert("distinct buyers");
        }
        if self.hours.len() > MAX_DISTINCT_HOURS {
            self.overflow.get_or_insert("distinct hours");
        }
    }

    /// The features of everything pushed so far.
    pub fn finish(&self) -> FeatureSummary {
        let rows = self.rows as f64;
        let rate = |count: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                count as f64 / of as f64
            }
        };
        let (mean, std, max) = if self.rows == 0 {
            (0.0, 0.0, 0.0)
        } else {
            let mean_units = self.amount_sum as f64 / rows;
            let variance_units =
                (self.amount_square_sum as f64 / rows - mean_units * mean_units).max(0.0);
            (
                mean_units / AMOUNT_SCALE,
                variance_units.sqrt() / AMOUNT_SCALE,
                self.amount_max as f64 / AMOUNT_SCALE,
            )
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let features = [
            (names::ORDER_COUNT, rows),
            (names::REFUND_RATE, rate(self.refunded, self.rows)),
            (names::CHARGEBACK_RATE, rate(self.chargebacks, self.rows)),
            (names::CANCEL_RATE, rate(self.cancelled, self.rows)),
            (
                names::MAX_ORDERS_PER_HOUR,
                self.hours.values().copied().max().unwrap_or(0) as f64,
            ),
            (
                names::DISTINCT_BUYER_RATIO,
                rate(self.buyers.len() as u64, self.rows),
            ),
            (
                names::COUNTRY_MISMATCH_RATE,
                rate(self.country_mismatches, self.countries_known),
            ),
            (names::NIGHT_SHARE, rate(self.night, self.rows)),
            (names::AMOUNT_MEAN, mean),
            (names::AMOUNT_STD, std),
            (names::AMOUNT_MAX, max),
            (names::AMOUNT_CV, ratio(std, mean)),
            (names::AMOUNT_MAX_TO_MEAN, ratio(max, mean)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        FeatureSummary {
            objects: self.objects,
            bytes: self.bytes,
            rows: self.rows,
            malformed_lines: self.malformed,
            features,
        }
    }

    fn add(&mut self, tx: Transaction) {
        self.rows += 1;
        match tx.status {
            Status::Paid => {}
            Status::Refunded => self.refunded += 1,
            Status::Chargeback => self.chargebacks += 1,
            Status::Cancelled => self.cancelled += 1,
        }
        if tx.local_hour < NIGHT_END_HOUR {
            self.night += 1;
        }
        if let (Some(card), Some(ip)) = (&tx.card_country, &tx.ip_country) {
            self.countries_known += 1;
            if !card.eq_ignore_ascii_case(ip) {
                self.country_mismatches += 1;
            }
        }
        let units = tx.amount_units as i128;
        self.amount_sum = self.amount_sum.saturating_add(units);
        self.amount_square_sum = self.amount_square_sum.saturating_add(units * units);
        self.amount_max = self.amount_max.max(tx.amount_units);
        if self.buyers.len() < self.max_buyers || self.buyers.contains(&tx.buyer_hash) {
            self.buyers.insert(tx.buyer_hash);
        } else {
            self.overflow.get_or_insert("distinct buyers");
        }
        if self.hours.len() < MAX_DISTINCT_HOURS || self.hours.contains_key(&tx.hour_bucket) {
            *self.hours.entry(tx.hour_bucket).or_default() += 1;
        } else {
            self.overflow.get_or_insert("distinct hours");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Paid,
    Refunded,
    Chargeback,
    Cancelled,
}

/// One parsed transaction, reduced to what the features need.
#[derive(Debug)]
struct Transaction<'a> {
    status: Status,
    amount_units: i64,
    buyer_hash: u64,
    hour_bucket: i64,
    local_hour: u32,
    card_country: Option<Text<'a>>,
    ip_country: Option<Text<'a>>,
}

/// The line as JSON; strings are borrowed from the line unless they contain escapes.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    ts: Text<'a>,
    amount: f64,
    #[serde(borrow)]
    status: Text<'a>,
    #[serde(borrow)]
    buyer: Text<'a>,
    #[serde(borrow, default)]
    card_country: Option<Text<'a>>,
    #[serde(borrow, default)]
    ip_country: Option<Text<'a>>,
}

fn parse(line: &[u8]) -> Option<Transaction<'_>> {
    let line: Line<'_> = serde_json::from_slice(line).ok()?;
    let status = match &*line.status.0 {
        "paid" => Status::Paid,
        "refunded" => Status::Refunded,
        "chargeback" => Status::Chargeback,
        "cancelled" => Status::Cancelled,
        _ => return None,
    };
    if !(line.amount.is_finite() && (0.0..=MAX_AMOUNT).contains(&line.amount)) {
        return None;
    }
    if line.buyer.0.is_empty() {
        return None;
    }
    let ts = DateTime::parse_from_rfc3339(&line.ts.0).ok()?;
    Some(Transaction {
        status,
        amount_units: (line.amount * AMOUNT_SCALE).round() as i64,
        buyer_hash: fnv1a(line.buyer.0.as_bytes()),
        hour_bucket: ts.timestamp().div_euclid(3600),
        local_hour: ts.hour(),
        card_country: line.card_country.filter(|c| !c.0.is_empty()),
        ip_country: line.ip_country.filter(|c| !c.0.is_empty()),
    })
}

/// A JSON string borrowed from the input when it has no escapes (serde's `borrow` only
/// borrows a bare `Cow<str>`, not one inside an `Option`).
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    fn eq_ignore_ascii_case(&self, other: &Text<'_>) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// 64-bit FNV-1a: a fixed, documented hash, so distinct-buyer counts are the same on every
/// machine and Rust version.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A hasher for keys that are already integers (buyer hashes, hour numbers): one
/// multiplication spreads them over the table (no SipHash per row). Only the sets' speed
/// depends on it, never their contents.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
}

/// The line without its terminator (`\n` or `\r\n`; a trailing `\r` alone counts as one too,
/// so that a line's length does not depend on how it was split).
fn without_terminator(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ascii(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., last] = line {
        if last.is_ascii_whitespace() {
            line = rest;
        } else {
            break;
        }
    }
    while let [first, rest @ ..] = line {
        if first.is_ascii_whitespace() {
            line = rest;
        } else {
            break;
        }
    }
    line
}

/// Consumes the rest of the current line (through its `\n`) without keeping it.
fn skip_line<R: BufRead>(reader: &mut R) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_buyers_are_capped_and_the_overflow_reported() {
        let line = |buyer: usize| {
            format!(
                r#"{{"ts":"2026-11-01T12:00:00Z","amount":5,"currency":"JPY","status":"paid","buyer":"b-{buyer}"}}"#
            )
        };
        let mut acc = FeatureAccumulator::with_max_buyers(3);
        for buyer in [1, 2, 3, 1, 2, 3] {
            assert!(acc.push_line(line(buyer).as_bytes()));
        }
        assert_eq!(acc.overflow(), None, "repeat buyers stay within the cap");
        acc.push_line(line(4).as_bytes());
        assert_eq!(acc.overflow(), Some("distinct buyers"));
        assert_eq!(acc.buyers.len(), 3, "memory stays bounded");

        let (mut a, mut b) = (
            FeatureAccumulator::with_max_buyers(3),
            FeatureAccumulator::with_max_buyers(3),
        );
        a.push_line(line(1).as_bytes());
        a.push_line(line(2).as_bytes());
        b.push_line(line(3).as_bytes());
        b.push_line(line(4).as_bytes());
        a.merge(b);
        assert_eq!(
            a.overflow(),
            Some("distinct buyers"),
            "a merge over the cap too"
        );
    }

    fn tx(ts: &str, amount: f64, status: &str, buyer: &str, card: &str, ip: &str) -> String {
        format!(
            r#"{{"ts":"{ts}","amount":{amount},"currency":"JPY","status":"{status}","buyer":"{buyer}","card_country":"{card}","ip_country":"{ip}"}}"#
        )
    }

    fn features(lines: &[String]) -> FeatureSummary {
        let mut acc = FeatureAccumulator::new();
        for line in lines {
            acc.push_line(line.as_bytes());
        }
        acc.finish()
    }

    fn f(summary: &FeatureSummary, name: &str) -> f64 {
        summary.features[name]
    }

    #[test]
    fn computes_every_documented_feature() {
        let lines = vec![
            tx(
                "2026-11-01T12:00:00+09:00",
                1000.0,
                "paid",
                "b1",
                "JP",
                "JP",
            ),
            tx(
                "2026-11-01T12:30:00+09:00",
                3000.0,
                "refunded",
                "b2",
                "JP",
                "JP",
            ),
            tx(
                "2026-11-01T12:59:59+09:00",
                2000.0,
                "chargeback",
                "b1",
                "US",
                "JP",
            ),
            tx(
                "2026-11-02T02:00:00+09:00",
                2000.0,
                "cancelled",
                "b3",
                "JP",
                "JP",
            ),
        ];
        let s = features(&lines);
        assert_eq!((s.rows, s.malformed_lines), (4, 0));
        assert_eq!(f(&s, names::ORDER_COUNT), 4.0);
        assert_eq!(f(&s, names::REFUND_RATE), 0.25);
        assert_eq!(f(&s, names::CHARGEBACK_RATE), 0.25);
        assert_eq!(f(&s, names::CANCEL_RATE), 0.25);
        assert_eq!(f(&s, names::MAX_ORDERS_PER_HOUR), 3.0);
        assert_eq!(f(&s, names::DISTINCT_BUYER_RATIO), 0.75);
        assert_eq!(f(&s, names::COUNTRY_MISMATCH_RATE), 0.25);
        assert_eq!(f(&s, names::NIGHT_SHARE), 0.25);
        assert_eq!(f(&s, names::AMOUNT_MEAN), 2000.0);
        assert!((f(&s, names::AMOUNT_STD) - 707.106_781_186_547_5).abs() < 1e-9);
        assert_eq!(f(&s, names::AMOUNT_MAX), 3000.0);
        assert!((f(&s, names::AMOUNT_CV) - 0.353_553_390_593_273_8).abs() < 1e-12);
        assert_eq!(f(&s, names::AMOUNT_MAX_TO_MEAN), 1.5);
        assert_eq!(s.features.len(), names::ALL.len());
    }

    #[test]
    fn night_is_local_to_the_timestamps_offset() {
        // 02:00 in Tokyo is 17:00 UTC the day before: night. 02:00 UTC is daytime in Tokyo,
        // but the line says Z, so it is night too. 12:00+09:00 is not.
        let s = features(&[
            tx("2026-11-01T02:00:00+09:00", 1.0, "paid", "a", "JP", "JP"),
            tx("2026-11-01T02:00:00Z", 1.0, "paid", "b", "JP", "JP"),
            tx("2026-11-01T12:00:00+09:00", 1.0, "paid", "c", "JP", "JP"),
            tx("2026-11-01T05:59:59-05:00", 1.0, "paid", "d", "US", "US"),
        ]);
        assert_eq!(f(&s, names::NIGHT_SHARE), 0.75);
    }

    #[test]
    fn malformed_lines_are_counted_and_skipped() {
        let good = tx("2026-11-01T12:00:00Z", 10.0, "paid", "b", "JP", "JP");
        let lines = vec![
            good.clone(),
            "not json".to_owned(),
            "{\"ts\":\"2026-11-01T12:00:00Z\"".to_owned(),
            tx("yesterday", 10.0, "paid", "b", "JP", "JP"),
            tx("2026-11-01T12:00:00Z", -1.0, "paid", "b", "JP", "JP"),
            tx("2026-11-01T12:00:00Z", 10.0, "stolen", "b", "JP", "JP"),
            tx("2026-11-01T12:00:00Z", 10.0, "paid", "", "JP", "JP"),
            r#"{"ts":"2026-11-01T12:00:00Z","amount":"10","status":"paid","buyer":"b"}"#.to_owned(),
            "[]".to_owned(),
            "   ".to_owned(),
            String::new(),
        ];
        let s = features(&lines);
        assert_eq!(s.rows, 1);
        assert_eq!(s.malformed_lines, 8);
    }

    #[test]
    fn optional_countries_and_escaped_strings() {
        let s = features(&[
            r#"{"ts":"2026-11-01T12:00:00Z","amount":5,"status":"paid","buyer":"b\u0031"}"#
                .to_owned(),
            r#"{"ts":"2026-11-01T12:00:00Z","amount":5,"status":"paid","buyer":"b1","card_country":"jp","ip_country":"\u004aP"}"#
                .to_owned(),
        ]);
        assert_eq!(s.rows, 2);
        assert_eq!(f(&s, names::DISTINCT_BUYER_RATIO), 0.5);
        assert_eq!(f(&s, names::COUNTRY_MISMATCH_RATE), 0.0);
    }

    #[test]
    fn reader_handles_crlf_missing_final_newline_and_overlong_lines() {
        let good = tx("2026-11-01T12:00:00Z", 10.0, "paid", "b", "JP", "JP");
        let long = "x".repeat(MAX_LINE_BYTES * 3);
        let input = format!("{good}\r\n{long}\n{good}\n\n{good}");
        let mut acc = FeatureAccumulator::new();
        acc.push_reader(std::io::BufReader::with_capacity(100, input.as_bytes()))
            .unwrap();
        assert_eq!((acc.rows(), acc.malformed_lines()), (3, 1));
    }

    /// Regression: the reader counted the limit on the raw line (leading blanks and `\r`
    /// included) and `push_line` on the trimmed one, so a line at the limit was a row through
    /// one and malformed through the other.
    #[test]
    fn the_line_limit_is_the_same_line_by_line_and_through_a_reader() {
        let good = tx("2026-11-01T12:00:00Z", 10.0, "paid", "b", "JP", "JP");
        let padded = |len: usize, lead: usize| {
            let mut line = " ".repeat(lead) + &good;
            line.push_str(&" ".repeat(len - line.len()));
            line
        };
        let cases = [
            (padded(MAX_LINE_BYTES, 0), (1, 0)),
            (padded(MAX_LINE_BYTES, 100), (1, 0)),
            (padded(MAX_LINE_BYTES + 1, 0), (0, 1)),
            (padded(MAX_LINE_BYTES + 1, 100), (0, 1)),
            (" ".repeat(MAX_LINE_BYTES), (0, 0)),
            (" ".repeat(MAX_LINE_BYTES + 1), (0, 1)),
        ];
        for (line, expected) in cases {
            for end in ["", "\n", "\r\n"] {
                let text = format!("{line}{end}");
                let mut by_line = FeatureAccumulator::new();
                by_line.push_line(text.as_bytes());
                let mut read = FeatureAccumulator::new();
                read.push_reader(std::io::BufReader::with_capacity(7, text.as_bytes()))
                    .unwrap();
                let what = format!("{} bytes ending {end:?}", line.len());
                assert_eq!(
                    (by_line.rows(), by_line.malformed_lines()),
                    expected,
                    "{what}"
                );
                assert_eq!((read.rows(), read.malformed_lines()), expected, "{what}");
            }
        }
    }

    #[test]
    fn merge_equals_a_single_pass_in_any_order() {
        let lines: Vec<String> = (0..200)
            .map(|i| {
                tx(
                    &format!("2026-11-01T{:02}:{:02}:00+01:00", i % 24, i % 60),
                    (i * 37 % 1000) as f64 + 0.25,
                    ["paid", "refunded", "chargeback", "cancelled"][i % 4],
                    &format!("b{}", i % 13),
                    "DE",
                    ["DE", "FR"][i % 3 % 2],
                )
            })
            .collect();
        let whole = features(&lines);
        let (a, b) = lines.split_at(77);
        let part = |ls: &[String]| {
            let mut acc = FeatureAccumulator::new();
            ls.iter().for_each(|l| {
                acc.push_line(l.as_bytes());
            });
            acc
        };
        let mut ab = part(a);
        ab.merge(part(b));
        let mut ba = part(b);
        ba.merge(part(a));
        let mut reversed = FeatureAccumulator::new();
        lines.iter().rev().for_each(|l| {
            reversed.push_line(l.as_bytes());
        });
        assert_eq!(ab.finish(), whole);
        assert_eq!(ba.finish(), whole);
        assert_eq!(reversed.finish(), whole);
    }

    #[test]
    fn no_rows_gives_zero_features() {
        let s = FeatureAccumulator::new().finish();
        assert_eq!(s.rows, 0);
        assert!(s.features.values().all(|v| *v == 0.0));
    }
}
