//! What compute's `parse` does after the JSON is decoded, copied from
//! functions/compute/src/features.rs at commit 6a36102 so that "decode + the rest" measures
//! the same work for every parser: [`transaction`] is the body of compute's `parse` after its
//! `serde_json::from_slice`, and everything from `currency_exponent` to `fnv1a` is verbatim
//! (some items made `pub`). compute keeps its own; this copy only serves the trial.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

/// Largest accepted amount, in major units of its currency (compute's `MAX_AMOUNT`).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;

/// Amounts are in units of 10^-AMOUNT_EXPONENT of the major unit (compute's).
pub const AMOUNT_EXPONENT: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Paid,
    Refunded,
    Chargeback,
    Cancelled,
}

/// One parsed transaction, reduced to what the features need (compute's `Transaction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub status: Status,
    /// The amount in [`AMOUNT_EXPONENT`] units (ten-thousandths of its currency's major unit).
    pub amount_units: u64,
    pub buyer_hash: u64,
    pub hour_bucket: i64,
    pub local_hour: u32,
    pub card_country: Option<Country>,
    pub ip_country: Option<Country>,
}

/// The checks of compute's `parse` after decoding, given the decoded fields; `amount` is the
/// number's exact text.
pub fn transaction(
    ts: &Text<'_>,
    amount: &[u8],
    currency: Option<&Text<'_>>,
    status: &Text<'_>,
    buyer: &Text<'_>,
    card_country: Option<Text<'_>>,
    ip_country: Option<Text<'_>>,
) -> Option<Transaction> {
    let status = match &*status.0 {
        "paid" => Status::Paid,
        "refunded" => Status::Refunded,
        "chargeback" => Status::Chargeback,
        "cancelled" => Status::Cancelled,
        _ => return None,
    };
    if buyer.0.is_empty() {
        return None;
    }
    let exponent = match currency {
        Some(code) => currency_exponent(&code.0)?,
        None => DEFAULT_CURRENCY_EXPONENT,
    };
    let minor = minor_units(amount, exponent)?;
    let ts = Timestamp::parse(ts.0.as_bytes())?;
    Some(Transaction {
        status,
        amount_units: minor * 10u64.pow(AMOUNT_EXPONENT - exponent),
        buyer_hash: fnv1a(buyer.0.as_bytes()),
        hour_bucket: ts.utc_seconds.div_euclid(3600),
        local_hour: ts.local_hour,
        card_country: country(card_country)?,
        ip_country: country(ip_country)?,
    })
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
pub fn minor_units(text: &[u8], exponent: u32) -> Option<u64> {
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
pub type Country = [u8; 2];

/// `Some(None)` when the country is absent, `null` or `""` (unknown); `Some(code)` for two ASCII
/// letters; `None` (the line is malformed) for anything else: a value that is not a code
/// would make the mismatch rate count what it cannot compare.
fn country(text: Option<Text<'_>>) -> Option<Option<Country>> {
    let Some(text) = text else {
        return Some(None);
    };
    match *text.0.as_bytes() {
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
