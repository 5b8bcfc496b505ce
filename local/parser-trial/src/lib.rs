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

/// The decoded strings as compute's checks take them (the amount is filled in by each decoder).
fn fields<'a>(
    ts: &'a Text<'_>,
    currency: &'a Option<Text<'_>>,
    status: &'a Text<'_>,
    buyer: &'a Text<'_>,
    card_country: &'a Option<Text<'_>>,
    ip_country: &'a Option<Text<'_>>,
) -> LineFields<'a> {
    let text = |t: &'a Option<Text<'_>>| t.as_ref().map(|t| &*t.0);
    LineFields {
        ts: &ts.0,
        amount: b"",
        currency: text(currency),
        status: &status.0,
        buyer: &buyer.0,
        card_country: text(card_country),
        ip_country: text(ip_country),
    }
}

/// Today's decoder, as in compute.
pub mod with_serde_json {
    use super::*;
    use ::serde_json::value::RawValue;
    use serde::Deserialize;

    /// compute's `Line`.
    #[derive(Deserialize)]
    pub struct Line<'a> {
        #[serde(borrow)]
        pub ts: Text<'a>,
        #[serde(borrow)]
        pub amount: &'a RawValue,
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

    /// The JSON decoding step alone.
    pub fn decode(line: &[u8]) -> Option<Line<'_>> {
        if line.first() != Some(&b'{') {
            return None;
        }
        ::serde_json::from_slice(line).ok()
    }

    /// compute's `parse`: decoding and the contract's checks.
    pub fn parse(line: &[u8]) -> Option<Transaction> {
        let l = decode(line)?;
        Transaction::from_fields(&LineFields {
            amount: l.amount.get().as_bytes(),
            ..fields(
                &l.ts,
                &l.currency,
                &l.status,
                &l.buyer,
                &l.card_country,
                &l.ip_country,
            )
        })
    }
}

/// sonic-rs through its serde API.
pub mod with_sonic_rs {
    use super::*;
    use serde::Deserialize;
    use sonic_rs::LazyValue;

    /// The same shape; `LazyValue` keeps the amount's raw text (validated as JSON).
    #[derive(Deserialize)]
    pub struct Line<'a> {
        #[serde(borrow)]
        pub ts: Text<'a>,
        #[serde(borrow)]
        pub amount: LazyValue<'a>,
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

    /// The JSON decoding step alone.
    pub fn decode(line: &[u8]) -> Option<Line<'_>> {
        if line.first() != Some(&b'{') {
            return None;
        }
        sonic_rs::from_slice(line).ok()
    }

    /// Decoding and the contract's checks.
    pub fn parse(line: &[u8]) -> Option<Transaction> {
        let l = decode(line)?;
        Transaction::from_fields(&LineFields {
            amount: l.amount.as_raw_str().as_bytes(),
            ..fields(
                &l.ts,
                &l.currency,
                &l.status,
                &l.buyer,
                &l.card_country,
                &l.ip_country,
            )
        })
    }
}

#[cfg(test)]
mod tests;
