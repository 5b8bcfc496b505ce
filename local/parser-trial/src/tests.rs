//! The contract's rules that depend on the JSON parser, checked for each one: a repeated known
//! field, an array in field order, escaped strings, the amount's exact text. The other rules
//! (timestamp, currency, status, countries) are the same code after decoding
//! (compute's `Transaction::from_fields`); a differential test checks that the parsers agree on
//! them too.

use super::*;
use compute::features::Status;

/// A valid line (1.005 USD, which rounds to 1.01 only from its exact text).
const VALID: &str = r#"{"ts":"2026-11-01T12:00:00+09:00","amount":1.005,"currency":"USD","status":"paid","buyer":"b-91","card_country":"JP","ip_country":"jp"}"#;

fn serde_json(line: &str) -> Option<Transaction> {
    with_serde_json::parse(line.as_bytes())
}

fn sonic_rs(line: &str) -> Option<Transaction> {
    with_sonic_rs::parse(line.as_bytes())
}

/// The line with its amount written as `amount` (the rest as in [`VALID`]).
fn with_amount(amount: &str) -> String {
    VALID.replace("1.005", amount)
}

type Parse = fn(&str) -> Option<Transaction>;
const PARSERS: [(&str, Parse); 2] = [("serde_json", serde_json), ("sonic-rs", sonic_rs)];

#[test]
fn every_parser_reads_a_valid_line() {
    for (name, parse) in PARSERS {
        let tx = parse(VALID).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(tx.status(), Status::Paid, "{name}");
        assert_eq!(tx.amount_units(), 10_100, "{name}: 1.005 USD is 1.01");
        assert_eq!(Some(tx), serde_json(VALID), "{name}");
    }
}

#[test]
fn every_parser_rejects_a_repeated_known_field() {
    let repeated = VALID.replace(r#""buyer":"b-91""#, r#""buyer":"b-91","buyer":"b-92""#);
    let repeated_optional =
        VALID.replace(r#""currency":"USD""#, r#""currency":"USD","currency":null"#);
    // Unknown fields are ignored, repeated or not.
    let unknown = VALID.replace(r#""buyer""#, r#""x":1,"x":2,"buyer""#);
    for (name, parse) in PARSERS {
        assert_eq!(parse(&repeated), None, "{name}");
        assert_eq!(parse(&repeated_optional), None, "{name}");
        assert!(parse(&unknown).is_some(), "{name}");
    }
    // The rejection is the decoder's (serde's derive, `duplicate field`), not a later check.
    assert!(with_serde_json::decode(repeated.as_bytes()).is_none());
    assert!(with_sonic_rs::decode(repeated.as_bytes()).is_none());
}

#[test]
fn every_parser_rejects_an_array_in_field_order() {
    let array = r#"["2026-11-01T12:00:00Z",1200,"JPY","paid","b-91","JP","JP"]"#;
    for (name, parse) in PARSERS {
        assert_eq!(parse(array), None, "{name}");
    }
    // Each decoder alone would take it (serde's derive reads a struct from a sequence): the
    // leading-`{` check, the same for all, is what rejects it.
    let decoded: Result<with_serde_json::Line<'_>, _> = ::serde_json::from_str(array);
    assert!(decoded.is_ok());
    let decoded: Result<with_sonic_rs::Line<'_>, _> = ::sonic_rs::from_str(array);
    assert!(decoded.is_ok());
}

#[test]
fn every_parser_decodes_escaped_strings() {
    // `\u0069` is `i`, `\u002d` is `-`, `\/` is `/`: the same transaction as unescaped.
    let escaped = VALID
        .replace(r#""paid""#, r#""pa\u0069d""#)
        .replace(r#""b-91""#, r#""b\u002d91""#)
        .replace(r#""USD""#, r#""\u0055SD""#);
    let slash = VALID.replace(r#""b-91""#, r#""b\/91""#);
    let unescaped_slash = VALID.replace(r#""b-91""#, r#""b/91""#);
    for (name, parse) in PARSERS {
        assert_eq!(parse(&escaped), serde_json(VALID), "{name}");
        assert!(parse(&escaped).is_some(), "{name}");
        assert_eq!(parse(&slash), parse(&unescaped_slash), "{name}");
        assert!(parse(&slash).is_some(), "{name}");
    }
    let line = with_sonic_rs::decode(escaped.as_bytes()).unwrap();
    assert_eq!(line.buyer.0, "b-91");
}

#[test]
fn serde_json_and_sonic_rs_keep_the_amounts_exact_text() {
    for text in [
        "1.005",
        "1.5E-2",
        "1e3",
        "-0",
        "0.00005",
        "1000000000000.0000001",
    ] {
        let line = with_amount(text);
        let decoded = with_serde_json::decode(line.as_bytes()).unwrap();
        assert_eq!(decoded.amount.get(), text);
        let decoded = with_sonic_rs::decode(line.as_bytes()).unwrap();
        assert_eq!(decoded.amount.as_raw_str(), text);
    }
    for parse in [serde_json as Parse, sonic_rs] {
        assert_eq!(parse(&with_amount("1.5E-2")).unwrap().amount_units(), 200);
        assert_eq!(
            parse(&with_amount("12.345")).unwrap().amount_units(),
            123_500
        );
        // Over the 1e12 bound by less than any f64 can tell: malformed.
        assert_eq!(parse(&with_amount("1000000000000.0000001")), None);
        assert_eq!(parse(&with_amount("1000000000000.001")), None);
        assert_eq!(parse(&with_amount("-0.0000000000000000001")), None);
    }
}

/// serde_json and sonic-rs agree line for line, malformed ones included.
#[test]
fn the_parsers_agree_on_other_lines() {
    let lines = [
        VALID.to_owned(),
        with_amount("01"),
        with_amount("1."),
        with_amount(".5"),
        with_amount("+1"),
        with_amount("1e"),
        with_amount("\"12\""),
        with_amount("null"),
        with_amount("[1]"),
        with_amount("1e400"),
        with_amount("18446744073709551616"),
        with_amount("-1"),
        VALID.replace(r#""USD""#, "null"),
        VALID.replace(r#""currency":"USD","#, ""),
        VALID.replace(r#""USD""#, r#""usd""#),
        VALID.replace(r#""JP""#, r#""JPN""#),
        VALID.replace(r#""JP""#, r#""""#),
        VALID.replace(r#""JP""#, "null"),
        VALID.replace(r#""paid""#, r#""Paid""#),
        VALID.replace(r#""b-91""#, r#""""#),
        VALID.replace(r#""buyer":"b-91","#, ""),
        VALID.replace("+09:00", "Z"),
        VALID.replace("T12", " 12"),
        VALID.replace(r#""b-91""#, r#""\ud800""#),
        VALID.replace(r#""b-91""#, r#""\ud83d\ude00""#),
        VALID.replace(r#""b-91""#, "\"b\u{1}91\""),
        VALID.replace(r#""b-91""#, r#""b\x91""#),
        VALID.replace(r#""buyer""#, r#""x":[1,}],"buyer""#),
        VALID.replace(r#""buyer""#, r#""x":01,"buyer""#),
        VALID.replace(r#""buyer""#, r#""x":{"a":[true,null,"\u00e9"]},"buyer""#),
        format!("{VALID} "),
        format!("{VALID}x"),
        format!("{VALID}{{}}"),
        VALID.replace("\":", "\" :\t").replace(",\"", " , \""),
        VALID[..VALID.len() - 1].to_owned(),
        "{}".to_owned(),
    ];
    let mut valid = 0;
    for line in &lines {
        let expected = serde_json(line);
        assert_eq!(sonic_rs(line), expected, "sonic-rs: {line}");
        valid += usize::from(expected.is_some());
    }
    // VALID; currency null or absent; a country "" or null; `Z`; an emoji; an unknown object;
    // a trailing space; spaces around `:` and `,`. Every other line is malformed.
    assert_eq!(valid, 10);
    // Not UTF-8 inside a string: malformed for every parser.
    let mut bytes = VALID.as_bytes().to_vec();
    let at = VALID.find("b-91").unwrap();
    bytes[at + 1] = 0xff;
    assert_eq!(with_serde_json::parse(&bytes), None);
    assert_eq!(with_sonic_rs::parse(&bytes), None);
}
