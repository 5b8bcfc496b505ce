//! The expressions of one DynamoDB request, with their placeholders, checked together before the
//! request is sent.
//!
//! DynamoDB rejects a request with `ValidationException` when a bound placeholder is not used by
//! any of its expressions, when an expression uses a placeholder that is not bound, or when a
//! reserved word (`status`, `name`, `data`, `ttl`, ...) stands bare as an attribute name. Some
//! emulators accept all three, so a mistake can pass every local test and fail every request in
//! AWS. Every store request goes through [`Expressions`], whose [`Expressions::check`] finds
//! these mistakes in the process that made them, with the request's expressions in the error.

mod reserved_words;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::operation::{
    put_item::builders::PutItemFluentBuilder, query::builders::QueryFluentBuilder,
    scan::builders::ScanFluentBuilder, update_item::builders::UpdateItemFluentBuilder,
};
use aws_sdk_dynamodb::types::{builders::KeysAndAttributesBuilder, AttributeValue};

pub use reserved_words::RESERVED_WORDS;

/// Words of the expression grammar itself, which are reserved words too but not attribute names.
const GRAMMAR: &[&str] = &[
    "AND", "OR", "NOT", "IN", "BETWEEN", "SET", "REMOVE", "ADD", "DELETE",
];

/// A mistake in a request's expressions: a bug in the code that built it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    #[error("placeholders bound but used by no expression: {0:?} (DynamoDB rejects the request)")]
    Unused(Vec<String>),
    #[error("placeholders used but not bound: {0:?}")]
    Unbound(Vec<String>),
    #[error("reserved words used bare as attribute names: {0:?} (use a #name placeholder)")]
    Reserved(Vec<String>),
    #[error("{0} is bound twice")]
    Duplicate(String),
    #[error("{request} takes no such expression: {rest}")]
    NotTaken { request: &'static str, rest: String },
}

/// The condition, update, key-condition, filter and projection expressions of one request, and
/// the `#name` and `:value` placeholders they use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expressions {
    pub condition: Option<String>,
    pub update: Option<String>,
    pub key_condition: Option<String>,
    pub filter: Option<String>,
    pub projection: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    duplicate: Option<String>,
}

impl Expressions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn condition(mut self, expression: impl Into<String>) -> Self {
        self.condition = Some(expression.into());
        self
    }

    pub fn update(mut self, expression: impl Into<String>) -> Self {
        self.update = Some(expression.into());
        self
    }

    pub fn key_condition(mut self, expression: impl Into<String>) -> Self {
        self.key_condition = Some(expression.into());
        self
    }

    pub fn filter(mut self, expression: impl Into<String>) -> Self {
        self.filter = Some(expression.into());
        self
    }

    pub fn projection(mut self, expression: impl Into<String>) -> Self {
        self.projection = Some(expression.into());
        self
    }

    /// Binds `#placeholder` to an attribute name.
    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        if self
            .names
            .insert(placeholder.to_owned(), attribute.to_owned())
            .is_some()
        {
            self.duplicate.get_or_insert_with(|| placeholder.to_owned());
        }
        self
    }

    /// Binds `:placeholder` to a value.
    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        if self.values.insert(placeholder.to_owned(), value).is_some() {
            self.duplicate.get_or_insert_with(|| placeholder.to_owned());
        }
        self
    }

    fn expressions(&self) -> impl Iterator<Item = &str> {
        [
            &self.condition,
            &self.update,
            &self.key_condition,
            &self.filter,
            &self.projection,
        ]
        .into_iter()
        .filter_map(|e| e.as_deref())
    }

    /// Finds what DynamoDB would reject: a placeholder bound twice, bound but unused, used but
    /// unbound, or a reserved word used bare.
    pub fn check(&self) -> Result<(), ExpressionError> {
        if let Some(placeholder) = &self.duplicate {
            return Err(ExpressionError::Duplicate(placeholder.clone()));
        }
        let mut used = BTreeSet::new();
        let mut reserved = BTreeSet::new();
        for expression in self.expressions() {
            for token in tokens(expression) {
                match token {
                    Token::Placeholder(p) => {
                        used.insert(p.to_owned());
                    }
                    Token::Attribute(name) if is_reserved(name) => {
                        reserved.insert(name.to_owned());
                    }
                    Token::Attribute(_) => {}
                }
            }
        }
        let bound: BTreeSet<String> = self
            .names
            .keys()
            .chain(self.values.keys())
            .cloned()
            .collect();
        let unused: Vec<String> = bound.difference(&used).cloned().collect();
        if !unused.is_empty() {
            return Err(ExpressionError::Unused(unused));
        }
        let unbound: Vec<String> = used.difference(&bound).cloned().collect();
        if !unbound.is_empty() {
            return Err(ExpressionError::Unbound(unbound));
        }
        if !reserved.is_empty() {
            return Err(ExpressionError::Reserved(reserved.into_iter().collect()));
        }
        Ok(())
    }

    /// The checked placeholder maps, each `None` when empty (DynamoDB rejects an empty map).
    #[allow(clippy::type_complexity)]
    pub fn into_checked(
        self,
    ) -> Result<
        (
            Checked,
            Option<HashMap<String, String>>,
            Option<HashMap<String, AttributeValue>>,
        ),
        ExpressionError,
    > {
        self.check()?;
        let checked = Checked {
            condition: self.condition,
            update: self.update,
            key_condition: self.key_condition,
            filter: self.filter,
            projection: self.projection,
        };
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        Ok((checked, names, values))
    }
}

/// The expressions of a request whose placeholders were checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub condition: Option<String>,
    pub update: Option<String>,
    pub key_condition: Option<String>,
    pub filter: Option<String>,
    pub projection: Option<String>,
}

fn is_reserved(word: &str) -> bool {
    let upper = word.to_ascii_uppercase();
    RESERVED_WORDS.binary_search(&upper.as_str()).is_ok()
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    /// `#name` or `:value`.
    Placeholder(&'a str),
    /// A bare attribute name (a path element that is not a placeholder).
    Attribute(&'a str),
}

/// The placeholders and bare attribute names of an expression. Function names (a word followed
/// by `(`), the grammar's keywords, list indexes and string literals (none in our expressions;
/// DynamoDB has no literals) are not attribute names.
fn tokens(expression: &str) -> Vec<Token<'_>> {
    let bytes = expression.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'#' || b == b':' {
            let start = i;
            i += 1;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            out.push(Token::Placeholder(&expression[start..i]));
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            let text = &expression[start..i];
            let next = expression[i..].trim_start().as_bytes().first().copied();
            let is_function = next == Some(b'(');
            let is_grammar = GRAMMAR.iter().any(|g| g.eq_ignore_ascii_case(text));
            if !is_function && !is_grammar {
                out.push(Token::Attribute(text));
            }
        } else {
            // Digits (list indexes), operators, brackets, commas, spaces.
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    out
}

/// Sets a request's expressions and placeholder maps from [`Expressions`], once checked.
pub trait WithExpressions: Sized {
    fn with_expressions(self, expressions: Expressions) -> Result<Self, crate::Error>;
}

/// Each request type takes the expressions it has; one it lacks is a bug, reported as such.
macro_rules! with_expressions {
    ($builder:ty, $request:literal, [$($part:ident => $setter:ident),*]) => {
        impl WithExpressions for $builder {
            fn with_expressions(self, expressions: Expressions) -> Result<Self, crate::Error> {
                let (mut rest, names, values) = expressions.into_checked()?;
                let request = self
                    $(.$setter(rest.$part.take()))*
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values);
                if rest != Checked::default() {
                    return Err(ExpressionError::NotTaken {
                        request: $request,
                        rest: format!("{rest:?}"),
                    }
                    .into());
                }
                Ok(request)
            }
        }
    };
}

with_expressions!(PutItemFluentBuilder, "PutItem", [condition => set_condition_expression]);
with_expressions!(
    UpdateItemFluentBuilder,
    "UpdateItem",
    [condition => set_condition_expression, update => set_update_expression]
);
with_expressions!(
    QueryFluentBuilder,
    "Query",
    [key_condition => set_key_condition_expression, projection => set_projection_expression]
);
with_expressions!(
    ScanFluentBuilder,
    "Scan",
    [filter => set_filter_expression, projection => set_projection_expression]
);

/// BatchGetItem's per-table part: a projection and its names (it takes no values).
impl WithExpressions for KeysAndAttributesBuilder {
    fn with_expressions(self, expressions: Expressions) -> Result<Self, crate::Error> {
        let (mut rest, names, values) = expressions.into_checked()?;
        let request = self
            .set_projection_expression(rest.projection.take())
            .set_expression_attribute_names(names);
        if rest != Checked::default() || values.is_some() {
            return Err(ExpressionError::NotTaken {
                request: "BatchGetItem",
                rest: format!("{rest:?} and values {values:?}"),
            }
            .into());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    #[test]
    fn reserved_words_are_sorted_and_include_the_usual_suspects() {
        assert!(RESERVED_WORDS.windows(2).all(|w| w[0] < w[1]));
        for word in ["status", "name", "data", "ttl", "result", "error"] {
            assert!(is_reserved(word), "{word}");
        }
        for word in [
            "subject_id",
            "job_id",
            "expires_at",
            "lease_until",
            "sequencer",
        ] {
            assert!(!is_reserved(word), "{word}");
        }
    }

    #[test]
    fn a_complete_request_passes() {
        let e = Expressions::new()
            .update("SET #status = :running, attempts = if_not_exists(attempts, :zero) + :one")
            .condition("job_id = :job AND (#status = :pending OR lease_until < :now)")
            .name("#status", "status")
            .value(":running", s("running"))
            .value(":pending", s("pending"))
            .value(":zero", AttributeValue::N("0".into()))
            .value(":one", AttributeValue::N("1".into()))
            .value(":job", s("j"))
            .value(":now", AttributeValue::N("5".into()));
        assert_eq!(e.check(), Ok(()));
    }

    #[test]
    fn a_scan_filter_is_checked_like_any_expression() {
        let filter = || {
            Expressions::new()
                .filter("#status IN (:pending, :running)")
                .name("#status", "status")
                .value(":pending", AttributeValue::S("pending".into()))
        };
        assert_eq!(
            filter().check(),
            Err(ExpressionError::Unbound(vec![":running".into()]))
        );
        let complete = filter().value(":running", AttributeValue::S("running".into()));
        assert_eq!(complete.check(), Ok(()));
        let bare = Expressions::new()
            .filter("status = :v")
            .value(":v", AttributeValue::S("x".into()));
        assert!(matches!(bare.check(), Err(ExpressionError::Reserved(_))));
    }

    #[test]
    fn a_bound_but_unused_value_is_caught() {
        // The defect this module exists for: a condition that binds values only another mode uses.
        let e = Expressions::new()
            .condition("attribute_not_exists(subject_id) OR expires_at <= :now_s")
            .value(":now_s", AttributeValue::N("1".into()))
            .value(":pending", s("pending"))
            .value(":running", s("running"));
        assert_eq!(
            e.check(),
            Err(ExpressionError::Unused(vec![
                ":pending".into(),
                ":running".into()
            ]))
        );
    }

    #[test]
    fn a_bound_but_unused_name_is_caught() {
        let e = Expressions::new()
            .condition("attribute_exists(subject_id)")
            .name("#status", "status");
        assert_eq!(
            e.check(),
            Err(ExpressionError::Unused(vec!["#status".into()]))
        );
    }

    #[test]
    fn a_used_but_unbound_placeholder_is_caught() {
        let e = Expressions::new()
            .condition("#status = :done")
            .name("#status", "status");
        assert_eq!(
            e.check(),
            Err(ExpressionError::Unbound(vec![":done".into()]))
        );
    }

    #[test]
    fn a_bare_reserved_word_is_caught_in_any_expression() {
        let update = Expressions::new()
            .update("SET status = :v")
            .value(":v", s("x"));
        assert_eq!(
            update.check(),
            Err(ExpressionError::Reserved(vec!["status".into()]))
        );
        let nested = Expressions::new()
            .condition("#e.retryable = :t AND error.code = :c")
            .name("#e", "error")
            .value(":t", AttributeValue::Bool(true))
            .value(":c", s("X"));
        assert_eq!(
            nested.check(),
            Err(ExpressionError::Reserved(vec!["error".into()]))
        );
        let projection = Expressions::new().projection("#d, #n");
        assert!(matches!(
            projection.check(),
            Err(ExpressionError::Unbound(_))
        ));
        let projection = Expressions::new().projection("#d, name").name("#d", "dir");
        assert_eq!(
            projection.check(),
            Err(ExpressionError::Reserved(vec!["name".into()]))
        );
    }

    #[test]
    fn functions_keywords_and_indexes_are_not_attribute_names() {
        let e = Expressions::new()
            .condition(
                "attribute_not_exists(subject_id) OR NOT (#s IN (:a, :b)) AND size(tags[3]) BETWEEN :a AND :b",
            )
            .update("SET x = :a REMOVE y ADD z :b DELETE w :a")
            .name("#s", "status")
            .value(":a", AttributeValue::N("1".into()))
            .value(":b", AttributeValue::N("2".into()));
        assert_eq!(e.check(), Ok(()));
    }

    #[test]
    fn binding_a_placeholder_twice_is_caught() {
        let e = Expressions::new()
            .condition("a = :v")
            .value(":v", s("1"))
            .value(":v", s("2"));
        assert_eq!(e.check(), Err(ExpressionError::Duplicate(":v".into())));
    }

    #[test]
    fn empty_maps_are_left_out() {
        let (checked, names, values) = Expressions::new()
            .condition("attribute_exists(subject_id)")
            .into_checked()
            .unwrap();
        assert_eq!(
            checked.condition.as_deref(),
            Some("attribute_exists(subject_id)")
        );
        assert_eq!((names, values), (None, None));
    }
}
