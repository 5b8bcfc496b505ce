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
//! ### The contract (the same list as docs/MODEL.md; a unit test below per rule)
//! A line that breaks a rule is **malformed**: counted in `malformed_lines`, skipped, never
//! fatal. Blank lines (ASCII whitespace only) are ignored.
//! 1. At most [`MAX_LINE_BYTES`] bytes, not counting its `\n` or `\r\n`, whatever it holds; the
//!    same limit line by line and through a reader.
//! 2. A JSON object (not an array of the fields in order). Unknown fields are ignored; a known
//!    field given twice makes the line malformed.
//! 3. `ts`: an RFC 3339 (section 5.6) `date-time`, exactly: `YYYY-MM-DDThh:mm:ss`, an optional
//!    fraction, then `Z` or `+hh:mm` / `-hh:mm` (ASCII sign); `t` and `z` as the RFC allows.
//!    Year 0001-9999, a real calendar date, second 00-59, or 60 only at 23:59:60 UTC (offset
//!    applied). No space separator, no Unicode minus, no other form.
//! 4. `amount`: a JSON number, 0 <= amount <= [`MAX_AMOUNT`] in major units (`-0` is 0),
//!    converted from its exact decimal text (exponents too: `1.5E-2`), never through a float, to
//!    the currency's minor unit, rounded half away from zero (`1.005` USD is 1.01).
//! 5. `currency` (optional; absent or `null`: 2 decimals): three ASCII uppercase letters, an
//!    ISO 4217 code whose minor unit sets the rounding (0 for JPY, KRW, ...; 3 for BHD, KWD,
//!    ...; 4 for CLF, UYW); a well-formed code we do not list gets 2.
//! 6. `status`: `paid` | `refunded` | `chargeback` | `cancelled`; `buyer`: a non-empty string.
//! 7. `card_country`, `ip_country` (optional): ISO 3166-1 alpha-2, two ASCII letters, compared
//!    case-insensitively; absent, `null` or `""` is unknown; anything else is malformed.
//!
//! Amount features are in major units: amounts are not converted between currencies, so a
//! subject that mixes them gets statistics over each line's amount in its own currency.
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
//! Every running total is exact and order-independent (integer counts, amounts summed as
//! integers in ten-thousandths of a major unit, the finest ISO 4217 minor unit, a set of 64-bit FNV-1a buyer hashes, per-hour counts), so the features —
//! and the score — do not depend on the order of lines, objects, or merges, nor on whether an
//! object was gzipped.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufRead};

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

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

/// Largest accepted amount, in major units of its currency; larger ones make the line malformed
/// (and keep the exact sums far from overflow).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;

/// Night is local hours `0..NIGHT_END_HOUR`.
pub const NIGHT_END_HOUR: u32 = 6;

/// Amounts are summed exactly in units of 10^-AMOUNT_EXPONENT of the major unit: the finest
/// ISO 4217 minor unit (CLF, UYW), so every currency's amounts are exact integers in it.
const AMOUNT_EXPONENT: u32 = 4;

/// One major unit in amount units.
const AMOUNT_SCALE: f64 = 10_000.0;

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
    amount_sum: u128,
    amount_square_sum: WideSum,
    amount_max: u64,
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
            amount_square_sum: WideSum::default(),
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

    /// Whether [`push_line`](Self::push_line) would count `line` as a transaction, without
    /// adding it: the parser alone, for measuring it (`score-files --mode parse`).
    pub fn parses(line: &[u8]) -> bool {
        without_terminator(line).len() <= MAX_LINE_BYTES && parse(trim_ascii(line)).is_some()
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
        self.amount_sum += other.amount_sum;
        self.amount_square_sum.add(other.amount_square_sum);
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
                (self.amount_square_sum.to_f64() / rows - mean_units * mean_units).max(0.0);
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
        if let (Some(card), Some(ip)) = (tx.card_country, tx.ip_country) {
            self.countries_known += 1;
            if card != ip {
                self.country_mismatches += 1;
            }
        }
        let units = u128::from(tx.amount_units);
        self.amount_sum += units;
        self.amount_square_sum.add(WideSum {
            high: 0,
            low: units * units,
        });
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

/// An exact sum of squared amounts: each is below 2^107 (1e16 amount units squared), so a u128
/// alone could overflow after a few million of the largest; the carries go to `high`.
#[derive(Debug, Clone, Copy, Default)]
struct WideSum {
    high: u64,
    low: u128,
}

impl WideSum {
    fn add(&mut self, other: WideSum) {
        let (low, carry) = self.low.overflowing_add(other.low);
        self.low = low;
        self.high += other.high + u64::from(carry);
    }

    fn to_f64(self) -> f64 {
        self.high as f64 * 2f64.powi(128) + self.low as f64
    }
}

/// What became of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Paid,
    Refunded,
    Chargeback,
    Cancelled,
}

/// One parsed transaction, reduced to what the features need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    status: Status,
    /// The amount in [`AMOUNT_EXPONENT`] units (ten-thousandths of its currency's major unit).
    amount_units: u64,
    buyer_hash: u64,
    hour_bucket: i64,
    local_hour: u32,
    card_country: Option<Country>,
    ip_country: Option<Country>,
}

/// The line as JSON; strings are borrowed from the line unless they contain escapes. A known
/// field given twice is an error of serde's derive (`duplicate field`): the line is malformed.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    ts: Text<'a>,
    /// The number's text as written: converted exactly, never through a float.
    #[serde(borrow)]
    amount: &'a RawValue,
    #[serde(borrow, default)]
    currency: Option<Text<'a>>,
    #[serde(borrow)]
    status: Text<'a>,
    #[serde(borrow)]
    buyer: Text<'a>,
    #[serde(borrow, default)]
    card_country: Option<Text<'a>>,
    #[serde(borrow, default)]
    ip_country: Option<Text<'a>>,
}

/// The transaction a (trimmed, non-blank) line holds, or `None` if it breaks a rule of the
/// contract (the module doc).
fn parse(line: &[u8]) -> Option<Transaction> {
    // serde's derive also reads a struct from an array of its fields in order.
    if line.first() != Some(&b'{') {
        return None;
    }
    let line: Line<'_> = serde_json::from_slice(line).ok()?;
    Transaction::from_fields(&LineFields {
        ts: &line.ts.0,
        amount: line.amount.get().as_bytes(),
        currency: line.currency.as_ref().map(|c| &*c.0),
        status: &line.status.0,
        buyer: &line.buyer.0,
        card_country: line.card_country.as_ref().map(|c| &*c.0),
        ip_country: line.ip_country.as_ref().map(|c| &*c.0),
    })
}

/// One line's fields as a JSON decoder hands them over: strings unescaped, the amount as the
/// number's exact text. compute decodes them with serde_json; `local/parser-trial` measures
/// other decoders followed by the same rules.
#[derive(Debug, Clone, Copy)]
pub struct LineFields<'a> {
    pub ts: &'a str,
    pub amount: &'a [u8],
    pub currency: Option<&'a str>,
    pub status: &'a str,
    pub buyer: &'a str,
    pub card_country: Option<&'a str>,
    pub ip_country: Option<&'a str>,
}

impl Transaction {
    /// The contract's rules after decoding (the module doc): `None` if `fields` break one.
    pub fn from_fields(fields: &LineFields<'_>) -> Option<Self> {
        let status = match fields.status {
            "paid" => Status::Paid,
            "refunded" => Status::Refunded,
            "chargeback" => Status::Chargeback,
            "cancelled" => Status::Cancelled,
            _ => return None,
        };
        if fields.buyer.is_empty() {
            return None;
        }
        let exponent = match fields.currency {
            Some(code) => currency_exponent(code)?,
            None => DEFAULT_CURRENCY_EXPONENT,
        };
        let minor = minor_units(fields.amount, exponent)?;
        let ts = Timestamp::parse(fields.ts.as_bytes())?;
        Some(Self {
            status,
            amount_units: minor * 10u64.pow(AMOUNT_EXPONENT - exponent),
            buyer_hash: fnv1a(fields.buyer.as_bytes()),
            hour_bucket: ts.utc_seconds.div_euclid(3600),
            local_hour: ts.local_hour,
            card_country: country(fields.card_country)?,
            ip_country: country(fields.ip_country)?,
        })
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The amount in ten-thousandths of its currency's major unit.
    pub fn amount_units(&self) -> u64 {
        self.amount_units
    }
}

/// Minor unit of a currency absent, `null` or not in [`currency_exponent`]'s table.
const DEFAULT_CURRENCY_EXPONENT: u32 = 2;

/// The ISO 4217 minor unit (decimal places) of `code`; `None` if `code` is not three ASCII
/// uppercase letters. A well-formed code not listed here gets [`DEFAULT_CURRENCY_EXPONENT`], as
/// most currencies have: the list changes (new codes appear), and refusing a shop's every line
/// for a code we do not know yet would be worse than assuming cents.
fn currency_exponent(code: &str) -> Option<u32> {
    let code: &[u8; 3] = code.as_bytes().try_into().ok()?;
    if !code.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    // ISO 4217 list one, every code whose minor unit is not 2 (2024 edition).
    Some(match code {
        b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG" | b"RWF"
        | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
        b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
        b"CLF" | b"UYW" => 4,
        _ => DEFAULT_CURRENCY_EXPONENT,
    })
}

/// A JSON number's text, exactly, in units of 10^-`exponent` (`exponent` <= [`AMOUNT_EXPONENT`])
/// of the major unit, rounded half away from zero (half up: amounts are not negative). `None` if
/// the text is not a number, is below 0 (`-0` is 0) or above [`MAX_AMOUNT`], however little.
fn minor_units(text: &[u8], exponent: u32) -> Option<u64> {
    let (negative, text) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    let (mantissa, power) = match text.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (&text[..at], decimal_exponent(&text[at + 1..])?),
        None => (text, 0),
    };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) if at + 1 < mantissa.len() => (&mantissa[..at], &mantissa[at + 1..]),
        Some(_) => return None,
        None => (mantissa, &[][..]),
    };
    if int.is_empty() || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        // Not a number (a string, `null`, ...): serde_json has checked the JSON grammar.
        return None;
    }
    let max = MAX_AMOUNT * 10u64.pow(exponent);
    // The digits are int ++ frac; the first `point` of them are whole minor units.
    let point = int.len() as i64 + power + i64::from(exponent);
    let (mut value, mut round_up, mut dropped_nonzero) = (0u64, false, false);
    for (i, &digit) in int.iter().chain(frac).enumerate() {
        let (i, digit) = (i as i64, u64::from(digit - b'0'));
        if i < point {
            // Never overflows: value <= max < u64::MAX / 10 - 9 here.
            value = value * 10 + digit;
            if value > max {
                return None;
            }
        } else {
            round_up |= i == point && digit >= 5;
            dropped_nonzero |= digit != 0;
        }
    }
    if value != 0 {
        // Zeros a positive exponent puts after the written digits (at most 17 before > max).
        for _ in (int.len() + frac.len()) as i64..point {
            value *= 10;
            if value > max {
                return None;
            }
        }
    }
    if (value == max && dropped_nonzero) || (negative && (value != 0 || dropped_nonzero)) {
        return None;
    }
    Some(value + u64::from(round_up))
}

/// The exponent of a JSON number (after its `e`), saturated far beyond any that matters (the
/// line is at most 64 KiB, so neither its digits nor this can overflow the position arithmetic).
fn decimal_exponent(text: &[u8]) -> Option<i64> {
    let (sign, digits) = match text {
        [b'-', rest @ ..] => (-1, rest),
        [b'+', rest @ ..] => (1, rest),
        _ => (1, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut power: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        power = (power * 10 + i64::from(digit - b'0')).min(1 << 40);
    }
    Some(sign * power)
}

/// What the features need of an RFC 3339 `date-time`.
struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (a leap second counts as the second before it).
    utc_seconds: i64,
    /// The hour as written, in the timestamp's own offset.
    local_hour: u32,
}

impl Timestamp {
    /// RFC 3339 section 5.6 `date-time`, exactly: `YYYY-MM-DD`, `T` (or `t`), `hh:mm:ss`, an
    /// optional fraction (`.` and 1+ digits), then `Z` (or `z`) or `+hh:mm` / `-hh:mm` with an
    /// ASCII sign. Year 0001-9999 (0000 is ISO 8601's only by agreement), a real calendar day,
    /// hour 00-23, minute 00-59, second 00-59, or 60 where a leap second can be: 23:59:60 UTC
    /// once the offset is applied (on any day: leap seconds are announced, not computable).
    fn parse(text: &[u8]) -> Option<Timestamp> {
        let (date_time, rest) = text.split_at_checked(19)?;
        let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T' | b't', h0, h1, b':', n0, n1, b':', s0, s1] =
            date_time
        else {
            return None;
        };
        let year = digits(&[y0, y1, y2, y3])?;
        let (month, day) = (digits(&[m0, m1])?, digits(&[d0, d1])?);
        let (hour, minute, second) = (digits(&[h0, h1])?, digits(&[n0, n1])?, digits(&[s0, s1])?);
        let rest = match rest {
            [b'.', fraction @ ..] => {
                let end = fraction
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(fraction.len());
                if end == 0 {
                    return None;
                }
                &fraction[end..]
            }
            _ => rest,
        };
        let offset_minutes = match *rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h0, h1, b':', n0, n1] => {
                let (hours, minutes) = (digits(&[h0, h1])?, digits(&[n0, n1])?);
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let minutes = (hours * 60 + minutes) as i64;
                if sign == b'-' {
                    -minutes
                } else {
                    minutes
                }
            }
            _ => return None,
        };
        if year == 0 || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let utc_minute_of_day = ((hour * 60 + minute) as i64 - offset_minutes).rem_euclid(24 * 60);
        if second == 60 && utc_minute_of_day != 24 * 60 - 1 {
            return None;
        }
        let local = NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_opt(
            hour,
            minute,
            second.min(59),
        )?;
        Some(Timestamp {
            utc_seconds: local.and_utc().timestamp() - offset_minutes * 60,
            local_hour: hour,
        })
    }
}

/// The value of ASCII decimal digits (at most 4 here), or `None` if any byte is not one.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0, |value, &b| {
        b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
    })
}

/// An ISO 3166-1 alpha-2 country code, uppercased (codes compare case-insensitively).
type Country = [u8; 2];

/// `Some(None)` when the country is absent, `null` or `""` (unknown); `Some(code)` for two ASCII
/// letters; `None` (the line is malformed) for anything else: a value that is not a code
/// would make the mismatch rate count what it cannot compare.
fn country(text: Option<&str>) -> Option<Option<Country>> {
    let Some(text) = text else {
        return Some(None);
    };
    match *text.as_bytes() {
        [] => Some(None),
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some(Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
        }
        _ => None,
    }
}

/// A JSON string borrowed from the input when it has no escapes (serde's `borrow` only
/// borrows a bare `Cow<str>`, not one inside an `Option`).
#[derive(Debug)]
pub struct Text<'a>(pub Cow<'a, str>);

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
            r#"{{"ts":"{ts}","amount":{amount},"currency":"USD","status":"{status}","buyer":"{buyer}","card_country":"{card}","ip_country":"{ip}"}}"#
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

    /// A line with `field` (`"name":value`) in place of `ts` .. `ip_country`'s own, or added.
    fn line_with(field: &str) -> String {
        let mut fields = vec![
            r#""ts":"2026-11-01T12:00:00Z""#.to_owned(),
            r#""amount":12.5"#.to_owned(),
            r#""currency":"USD""#.to_owned(),
            r#""status":"paid""#.to_owned(),
            r#""buyer":"b1""#.to_owned(),
            r#""card_country":"JP""#.to_owned(),
            r#""ip_country":"JP""#.to_owned(),
        ];
        let name = &field[..field.find(':').unwrap()];
        match fields.iter_mut().find(|f| f.starts_with(name)) {
            Some(f) => *f = field.to_owned(),
            None => fields.push(field.to_owned()),
        }
        format!("{{{}}}", fields.join(","))
    }

    fn parsed(line: &str) -> Option<Transaction> {
        parse(trim_ascii(line.as_bytes()))
    }

    /// Rule: only a JSON object is a transaction (serde's derive reads arrays too).
    #[test]
    fn only_an_object_is_a_transaction() {
        assert!(parsed(&line_with(r#""amount":12.5"#)).is_some());
        assert!(parsed(&format!("  {} ", line_with(r#""amount":12.5"#))).is_some());
        for line in [
            r#"["2026-11-01T12:00:00Z",12.5,"USD","paid","b1","JP","JP"]"#,
            r#"["2026-11-01T12:00:00Z",12.5,null,"paid","b1"]"#,
            r#" ["2026-11-01T12:00:00Z",12.5,null,"paid","b1"]"#,
            "null",
            "12.5",
            r#""paid""#,
        ] {
            assert!(parsed(line).is_none(), "{line}");
        }
    }

    /// Rule: the amount's decimal text is converted exactly to minor units, half away from zero.
    #[test]
    fn amounts_are_converted_exactly_from_their_decimal_text() {
        let cases: &[(&str, u32, Option<u64>)] = &[
            ("1200", 0, Some(1200)),
            ("1200", 2, Some(120_000)),
            ("1.005", 2, Some(101)),
            ("12.345", 2, Some(1235)),
            ("12.344999999999999999999999", 2, Some(1234)),
            ("0.125", 2, Some(13)),
            ("0.005", 2, Some(1)),
            ("0.0049999", 2, Some(0)),
            ("0.5", 0, Some(1)),
            ("2.5", 0, Some(3)),
            ("1.2345", 3, Some(1235)),
            ("0", 2, Some(0)),
            ("-0", 2, Some(0)),
            ("-0.000", 2, Some(0)),
            ("-0e5", 2, Some(0)),
            ("-0.001", 2, None),
            ("-0.004", 2, None),
            ("-1", 2, None),
            // Exponents, exactly.
            ("1e3", 2, Some(100_000)),
            ("1E+3", 0, Some(1000)),
            ("1.5E-2", 2, Some(2)),
            ("15e-3", 3, Some(15)),
            ("125e-3", 2, Some(13)),
            ("0.00001e5", 2, Some(100)),
            ("1e-400", 2, Some(0)),
            ("0e999999999999999999999", 2, Some(0)),
            // The bounds: 0 ..= 1e12 major units, exactly.
            ("1e12", 2, Some(100_000_000_000_000)),
            ("1000000000000.000000", 4, Some(10_000_000_000_000_000)),
            ("999999999999.995", 2, Some(100_000_000_000_000)),
            ("1000000000000.00000001", 2, None),
            ("1.0000000000001e12", 0, None),
            ("1000000000001", 0, None),
            ("18446744073709551616", 2, None),
            ("1e400", 2, None),
            ("1e999999999999999999999", 0, None),
            // Not numbers: serde_json hands over any JSON value's text.
            (r#""12.5""#, 2, None),
            ("null", 2, None),
            ("true", 2, None),
            ("[1]", 2, None),
            (r#"{"v":1}"#, 2, None),
        ];
        for &(text, exponent, expected) in cases {
            assert_eq!(
                minor_units(text.as_bytes(), exponent),
                expected,
                "{text} at 10^-{exponent}"
            );
        }
        // Through a line: amount_max in major units, to the cent.
        let s = features(&[
            line_with(r#""amount":1.005"#),
            line_with(r#""amount":12.345"#),
        ]);
        assert_eq!(f(&s, names::AMOUNT_MAX), 12.35);
        assert_eq!(f(&s, names::AMOUNT_MEAN), 6.68);
        assert_eq!(s.malformed_lines, 0);
    }

    /// Rule: `currency` (ISO 4217) selects the minor unit; it must be three ASCII uppercase letters.
    #[test]
    fn the_currency_selects_the_minor_unit() {
        let amount_max = |currency: &str, amount: &str| {
            let line = line_with(&format!(r#""currency":{currency}"#))
                .replace(r#""amount":12.5"#, &format!(r#""amount":{amount}"#));
            let s = features(&[line]);
            (s.rows == 1).then(|| f(&s, names::AMOUNT_MAX))
        };
        assert_eq!(amount_max(r#""KWD""#, "1.2345"), Some(1.235));
        assert_eq!(amount_max(r#""BHD""#, "0.0005"), Some(0.001));
        assert_eq!(amount_max(r#""JPY""#, "1200.5"), Some(1201.0));
        assert_eq!(amount_max(r#""KRW""#, "0.4"), Some(0.0));
        assert_eq!(amount_max(r#""CLF""#, "1.23456"), Some(1.2346));
        assert_eq!(amount_max(r#""USD""#, "1.2345"), Some(1.23));
        assert_eq!(amount_max(r#""EUR""#, "1.235"), Some(1.24));
        // Well-formed but not in the table: 2 decimals. Absent or null: 2 decimals.
        assert_eq!(amount_max(r#""XYZ""#, "1.2345"), Some(1.23));
        assert_eq!(amount_max("null", "1.2345"), Some(1.23));
        let without = line_with(r#""amount":1.2345"#).replace(r#""currency":"USD","#, "");
        assert_eq!(f(&features(&[without]), names::AMOUNT_MAX), 1.23);
        for malformed in [
            r#""usd""#,
            r#""Usd""#,
            r#""US""#,
            r#""USDT""#,
            r#""""#,
            r#""ÜSD""#,
            r#"" USD""#,
            "1",
        ] {
            assert_eq!(amount_max(malformed, "1"), None, "{malformed}");
        }
        // Mixed currencies: each amount in its own major units, exactly; order-independent.
        let kwd = line_with(r#""currency":"KWD""#).replace("12.5", "0.001");
        let jpy = line_with(r#""currency":"JPY""#).replace("12.5", "1000");
        let (ab, ba) = (features(&[kwd.clone(), jpy.clone()]), features(&[jpy, kwd]));
        assert_eq!(ab, ba);
        assert_eq!(f(&ab, names::AMOUNT_MEAN), 500.0005);
        assert_eq!(f(&ab, names::AMOUNT_MAX), 1000.0);
    }

    /// Rule: `ts` is an RFC 3339 `date-time`, exactly.
    #[test]
    fn timestamps_are_rfc3339_date_time_exactly() {
        let hours = |ts: &str| {
            Timestamp::parse(ts.as_bytes()).map(|t| (t.utc_seconds.div_euclid(3600), t.local_hour))
        };
        let noon = hours("2026-11-01T12:00:00Z").unwrap();
        for (ts, expected) in [
            ("2026-11-01T12:00:00+00:00", noon),
            ("2026-11-01T12:00:00-00:00", noon),
            ("2026-11-01t12:00:00z", noon),
            ("2026-11-01T12:59:59.999999999999Z", noon),
            ("2026-11-01T12:00:00.5Z", noon),
            ("2026-11-01T21:00:00+09:00", (noon.0, 21)),
            ("2026-11-01T06:30:00-05:30", (noon.0, 6)),
            ("2026-11-01T23:59:60Z", (noon.0 + 11, 23)),
            (
                "2026-12-31T18:59:60-05:00",
                (hours("2026-12-31T23:00:00Z").unwrap().0, 18),
            ),
            (
                "2026-07-01T05:29:60+05:30",
                (hours("2026-06-30T23:00:00Z").unwrap().0, 5),
            ),
            (
                "2024-02-29T00:00:00Z",
                hours("2024-02-29T00:00:00+00:00").unwrap(),
            ),
            ("0001-01-01T00:00:00Z", (-62_135_596_800 / 3600, 0)),
            ("9999-12-31T23:59:59Z", (253_402_300_799 / 3600, 23)),
        ] {
            assert_eq!(hours(ts), Some(expected), "{ts}");
        }
        for ts in [
            "2026-11-01 12:00:00Z",
            "2026-11-01T12:00:00−05:00",
            "2026-11-01T12:00:00",
            "2026-11-01T12:00Z",
            "2026-11-01T12:00:00.Z",
            "2026-11-01T12:00:00+0500",
            "2026-11-01T12:00:00+05",
            "2026-11-01T12:00:00+24:00",
            "2026-11-01T12:00:00+05:60",
            "2026-11-01T12:00:00ZZ",
            "2026-11-01T12:00:00Z ",
            "2026-11-01T12:00:60Z",
            "2026-11-01T23:58:60Z",
            "2026-11-01T23:59:60+01:00",
            "2026-11-01T23:59:61Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T12:60:00Z",
            "2026-02-29T12:00:00Z",
            "2026-13-01T12:00:00Z",
            "2026-00-01T12:00:00Z",
            "2026-11-00T12:00:00Z",
            "0000-01-01T00:00:00Z",
            "+2026-11-01T12:00:00Z",
            "20261-11-01T12:00:00Z",
            "2026-1-01T12:00:00Z",
            "2026-11-01T12:00:00Ｚ",
            "２026-11-01T12:00:00Z",
            "2026-11-01",
            "",
        ] {
            assert_eq!(hours(ts), None, "{ts}");
        }
        // In a line, through JSON: a refused timestamp makes the line malformed.
        let s = features(&[
            line_with(r#""ts":"2026-11-01 12:00:00Z""#),
            line_with(r#""ts":"2026-11-01T12:00:00\u221205:00""#),
            line_with(r#""ts":"2026-11-01t12:00:00z""#),
        ]);
        assert_eq!((s.rows, s.malformed_lines), (1, 2));
    }

    /// Rule: a known field given twice makes the line malformed; unknown fields are ignored.
    #[test]
    fn a_repeated_known_field_makes_a_line_malformed() {
        let good = line_with(r#""amount":12.5"#);
        let again = |field: &str| good.replacen('}', &format!(",{field}}}"), 1);
        for field in [
            r#""ts":"2026-11-01T12:00:00Z""#,
            r#""amount":12.5"#,
            r#""currency":"USD""#,
            r#""status":"paid""#,
            r#""buyer":"b1""#,
            r#""card_country":"JP""#,
            r#""ip_country":null"#,
        ] {
            assert!(parsed(&again(field)).is_none(), "{field}");
        }
        assert!(parsed(&again(r#""note":1,"note":2"#)).is_some());
    }

    /// Rule: countries are ISO 3166-1 alpha-2 codes (two ASCII letters, any case); `null`,
    /// absent and `""` are unknown; anything else makes the line malformed.
    #[test]
    fn countries_are_alpha2_codes_compared_case_insensitively() {
        let countries = |card: &str, ip: &str| {
            parsed(
                &line_with(&format!(r#""card_country":{card}"#))
                    .replace(r#""ip_country":"JP""#, &format!(r#""ip_country":{ip}"#)),
            )
            .map(|tx| (tx.card_country, tx.ip_country))
        };
        assert_eq!(
            countries(r#""jp""#, r#""Jp""#),
            Some((Some(*b"JP"), Some(*b"JP")))
        );
        assert_eq!(
            countries(r#""\u004aP""#, r#""us""#),
            Some((Some(*b"JP"), Some(*b"US")))
        );
        assert_eq!(countries("null", r#""""#), Some((None, None)));
        for bad in [
            r#""JPN""#,
            r#""J""#,
            r#""J1""#,
            r#""ÉS""#,
            r#""ＪＰ""#,
            r#"" JP""#,
            "1",
            "true",
        ] {
            assert_eq!(countries(bad, r#""JP""#), None, "{bad}");
            assert_eq!(countries(r#""JP""#, bad), None, "{bad}");
        }
        let s = features(&[
            line_with(r#""card_country":"jp""#),
            line_with(r#""card_country":"US""#),
            line_with(r#""card_country":null"#),
        ]);
        assert_eq!(s.rows, 3);
        assert_eq!(f(&s, names::COUNTRY_MISMATCH_RATE), 0.5);
    }

    #[test]
    fn no_rows_gives_zero_features() {
        let s = FeatureAccumulator::new().finish();
        assert_eq!(s.rows, 0);
        assert!(s.features.values().all(|v| *v == 0.0));
    }
}
