//! A trial, not shipped: does a faster JSON parser justify replacing serde_json in compute's
//! line parser (functions/compute/src/features.rs, `parse`)? The same line decoded into the same
//! borrowed `Line` shape by two parsers, each followed by compute's own checks after decoding
//! ([`Transaction::from_fields`]):
//!
//! - [`with_serde_json`]: today's, `serde_json::from_slice`, the amount a `&RawValue`;
//! - [`with_sonic_rs`]: `sonic_rs::from_slice`, the amount a `sonic_rs::LazyValue` (its raw text).
//!
//! Both reject a line that does not start with `{` before decoding, as compute does (serde's
//! derive also reads a struct from an array of its fields in order).
//!
//! simd-json was measured too (at commit caedb88) and removed since: it keeps no number's text,
//! so it cannot keep the amount's exact text.
//!
//! The measurement is `benches/decode.rs`; the results and the conclusion are in
//! docs/BENCHMARKS.md ("A faster JSON parser?").

use compute::features::{LineFields, Text, Transaction};
use serde::Deserialize;

/// compute's `Line`, decoded by either parser: only the amount's type differs (the number's
/// exact text, as each parser keeps it).
#[derive(Deserialize)]
pub struct Line<'a, Amount> {
    #[serde(borrow)]
    pub ts: Text<'a>,
    pub amount: Amount,
    #[serde(borrow, default)]
    pub currency: Option<Text<'a>>,
    #[serde(borrow)]
    pub status: Text<'a>,
    #[serde(borrow)]
    pub buyer: Text<'a>,
    #[serde(borrow, default)]
    pub card_country: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub ip_country: Option<Text<'a>>,
}

impl<Amount> Line<'_, Amount> {
    /// compute's checks after decoding, given the amount's exact text.
    fn transaction(&self, amount: &[u8]) -> Option<Transaction> {
        fn text<'s>(t: &'s Option<Text<'_>>) -> Option<&'s str> {
            t.as_ref().map(|t| &*t.0)
        }
        Transaction::from_fields(&LineFields {
            ts: &self.ts.0,
            amount,
            currency: text(&self.currency),
            status: &self.status.0,
            buyer: &self.buyer.0,
            card_country: text(&self.card_country),
            ip_country: text(&self.ip_country),
        })
    }
}

/// Today's decoder, as in compute.
pub mod with_serde_json {
    use ::serde_json::value::RawValue;

    use super::Transaction;

    /// compute's `Line`: the amount a `&RawValue`.
    pub type Line<'a> = super::Line<'a, &'a RawValue>;

    /// The JSON decoding step alone.
    pub fn decode(line: &[u8]) -> Option<Line<'_>> {
        if line.first() != Some(&b'{') {
            return None;
        }
        ::serde_json::from_slice(line).ok()
    }

    /// compute's `parse`: decoding and the contract's checks.
    pub fn parse(line: &[u8]) -> Option<Transaction> {
        let line = decode(line)?;
        line.transaction(line.amount.get().as_bytes())
    }
}

/// sonic-rs through its serde API.
pub mod with_sonic_rs {
    use sonic_rs::LazyValue;

    use super::Transaction;

    /// The same shape; `LazyValue` keeps the amount's raw text (validated as JSON).
    pub type Line<'a> = super::Line<'a, LazyValue<'a>>;

    /// The JSON decoding step alone.
    pub fn decode(line: &[u8]) -> Option<Line<'_>> {
        if line.first() != Some(&b'{') {
            return None;
        }
        sonic_rs::from_slice(line).ok()
    }

    /// Decoding and the contract's checks.
    pub fn parse(line: &[u8]) -> Option<Transaction> {
        let line = decode(line)?;
        line.transaction(line.amount.as_raw_str().as_bytes())
    }
}

#[cfg(test)]
mod tests;
