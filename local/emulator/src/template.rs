//! A CloudFormation/SAM template, with the intrinsic functions the provisioner needs resolved.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template is not valid YAML")]
    Yaml(#[from] serde_norway::Error),
    #[error("template: {0}")]
    Shape(String),
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Yaml,
    pub metadata: Yaml,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Option<String>>,
    pub resources: Vec<Resource>,
    /// `Globals.Function`, merged under each function's properties by SAM.
    pub function_globals: Yaml,
    /// `Conditions`, by name (for `!If`).
    pub conditions: HashMap<String, Yaml>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let doc: Yaml = serde_norway::from_str(text)?;
        let mut parameters = BTreeMap::new();
        if let Some(Yaml::Mapping(params)) = doc.get("Parameters") {
            for (name, spec) in params {
                let name = name.as_str().unwrap_or_default().to_owned();
                let default = spec.get("Default").map(scalar_text);
                parameters.insert(name, default);
            }
        }
        let mut resources = Vec::new();
        match doc.get("Resources") {
            Some(Yaml::Mapping(map)) => {
                for (id, body) in map {
                    let logical_id = id
                        .as_str()
                        .ok_or_else(|| {
                            TemplateError::Shape("a resource id is not a string".into())
                        })?
                        .to_owned();
                    let kind = body
                        .get("Type")
                        .and_then(Yaml::as_str)
                        .ok_or_else(|| TemplateError::Shape(format!("{logical_id} has no Type")))?
                        .to_owned();
                    resources.push(Resource {
                        logical_id,
                        kind,
                        properties: body.get("Properties").cloned().unwrap_or(Yaml::Null),
                        metadata: body.get("Metadata").cloned().unwrap_or(Yaml::Null),
                    });
                }
            }
            _ => return Err(TemplateError::Shape("no Resources".into())),
        }
        let function_globals = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .cloned()
            .unwrap_or(Yaml::Null);
        let conditions = match doc.get("Conditions") {
            Some(Yaml::Mapping(map)) => map
                .iter()
                .map(|(k, v)| (scalar_text(k), v.clone()))
                .collect(),
            _ => HashMap::new(),
        };
        Ok(Self {
            parameters,
            resources,
            function_globals,
            conditions,
        })
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.logical_id == logical_id)
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.kind == kind)
    }

    pub fn parameter_default(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).and_then(|d| d.as_deref())
    }
}

fn scalar_text(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// Physical values the intrinsic functions resolve to.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    /// `!Ref` of a parameter or pseudo parameter.
    pub parameters: HashMap<String, String>,
    /// `!Ref` of a resource: table name, topic ARN, queue URL, bucket name.
    pub refs: HashMap<String, String>,
    /// `!GetAtt Resource.Attribute`, keyed `Resource.Attribute`.
    pub attributes: HashMap<String, String>,
    /// The template's `Conditions`, for `!If`.
    pub conditions: HashMap<String, Yaml>,
}

impl Symbols {
    fn lookup(&self, name: &str) -> Option<String> {
        self.parameters
            .get(name)
            .or_else(|| self.refs.get(name))
            .or_else(|| self.attributes.get(name))
            .cloned()
    }

    /// Resolves `!Ref`, `!GetAtt`, `!Sub` (short and long forms) into JSON. An unresolvable
    /// reference becomes `null` rather than an error: callers check the fields they need.
    /// As in CloudFormation, a list item or a property that is `AWS::NoValue` (directly or as the
    /// chosen branch of an `!If`) is left out, e.g. a policy statement under a false condition.
    pub fn resolve(&self, value: &Yaml) -> Json {
        match value {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => serde_json::to_value(n).unwrap_or(Json::Null),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => Json::Array(
                items
                    .iter()
                    .filter(|v| !self.is_no_value(v))
                    .map(|v| self.resolve(v))
                    .collect(),
            ),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &tagged.value)
            }
            Yaml::Mapping(map) => {
                if map.len() == 1 {
                    let (k, v) = map.iter().next().expect("one entry");
                    if let Some(k) = k.as_str() {
                        if k == "Ref" || k.starts_with("Fn::") {
                            return self.intrinsic(k.trim_start_matches("Fn::"), v);
                        }
                    }
                }
                Json::Object(
                    map.iter()
                        .filter(|(_, v)| !self.is_no_value(v))
                        .map(|(k, v)| (scalar_text(k), self.resolve(v)))
                        .collect(),
                )
            }
        }
    }

    /// Whether `value` is `!Ref AWS::NoValue`, directly or as the branch an `!If` chooses.
    fn is_no_value(&self, value: &Yaml) -> bool {
        let Some((function, arg)) = function_call(value) else {
            return false;
        };
        match (function.as_str(), arg) {
            ("Ref", Yaml::String(name)) => name == "AWS::NoValue",
            ("If", Yaml::Sequence(parts)) if parts.len() == 3 => {
                let holds = self.condition(&scalar_text(&parts[0]));
                self.is_no_value(&parts[if holds { 1 } else { 2 }])
            }
            _ => false,
        }
    }

    fn intrinsic(&self, function: &str, arg: &Yaml) -> Json {
        match function {
            "Ref" => arg
                .as_str()
                .and_then(|name| self.lookup(name))
                .map(Json::String)
                .unwrap_or(Json::Null),
            "GetAtt" => {
                let path = match arg {
                    Yaml::String(s) => s.clone(),
                    Yaml::Sequence(parts) => {
                        parts.iter().map(scalar_text).collect::<Vec<_>>().join(".")
                    }
                    _ => return Json::Null,
                };
                self.attributes
                    .get(&path)
                    .cloned()
                    .map(Json::String)
                    .unwrap_or(Json::Null)
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Yaml::String(s) => (s.clone(), HashMap::new()),
                    Yaml::Sequence(parts) if !parts.is_empty() => {
                        let mut vars = HashMap::new();
                        if let Some(Yaml::Mapping(m)) = parts.get(1) {
                            for (k, v) in m {
                                if let Json::String(s) = self.resolve(v) {
                                    vars.insert(scalar_text(k), s);
                                }
                            }
                        }
                        (scalar_text(&parts[0]), vars)
                    }
                    _ => return Json::Null,
                };
                Json::String(self.substitute(&text, &vars))
            }
            // `!If [Condition, when true, when false]`; `!Ref AWS::NoValue` resolves to null.
            "If" => match arg {
                Yaml::Sequence(parts) if parts.len() == 3 => {
                    let holds = self.condition(&scalar_text(&parts[0]));
                    self.resolve(&parts[if holds { 1 } else { 2 }])
                }
                _ => Json::Null,
            },
            _ => Json::Null,
        }
    }

    /// Whether the named condition holds (`Equals`, `Not`, `And`, `Or`, `Condition`); an
    /// unknown or unreadable one does not.
    fn condition(&self, name: &str) -> bool {
        self.conditions
            .get(name)
            .is_some_and(|definition| self.holds(definition))
    }

    fn holds(&self, expression: &Yaml) -> bool {
        let Some((function, arg)) = function_call(expression) else {
            return false;
        };
        let items = || arg.as_sequence().cloned().unwrap_or_default();
        match function.as_str() {
            "Equals" => {
                let values: Vec<Json> = items().iter().map(|v| self.resolve(v)).collect();
                let text = |v: &Json| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                values.len() == 2 && text(&values[0]) == text(&values[1])
            }
            "Not" => items().first().is_some_and(|c| !self.holds(c)),
            "And" => items().iter().all(|c| self.holds(c)),
            "Or" => items().iter().any(|c| self.holds(c)),
            "Condition" => self.condition(&scalar_text(arg)),
            _ => false,
        }
    }

    fn substitute(&self, text: &str, vars: &HashMap<String, String>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    let value = vars
                        .get(name)
                        .cloned()
                        .or_else(|| self.lookup(name))
                        .unwrap_or_default();
                    out.push_str(&value);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A function call in either spelling, `!Name arg` or `{"Fn::Name": arg}` (any one-entry
/// mapping): the name without `!` or `Fn::`, and its argument.
fn function_call(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        Yaml::Mapping(map) if map.len() == 1 => {
            let (k, v) = map.iter().next().expect("one entry");
            Some((scalar_text(k).trim_start_matches("Fn::").to_owned(), v))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_choose_the_branch_of_an_if() {
        let template = Template::parse(
            r#"
Parameters:
  Reserved: {Type: Number, Default: -1}
  Auth: {Type: String, Default: NONE}
Conditions:
  Reserve: !Not [!Equals [!Ref Reserved, -1]]
  Open: {"Fn::Equals": [{Ref: Auth}, NONE]}
  Both: !And [!Condition Reserve, !Condition Open]
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      A: !If [Reserve, !Ref Reserved, !Ref AWS::NoValue]
      B: !If [Open, yes, no]
      C: !If [Both, yes, no]
      L:
        - kept
        - !If [Reserve, reserved, !Ref AWS::NoValue]
        - !If [Open, open, !Ref AWS::NoValue]
        - {"Fn::If": [Reserve, reserved, {Ref: AWS::NoValue}]}
"#,
        )
        .unwrap();
        let mut symbols = Symbols {
            conditions: template.conditions.clone(),
            ..Symbols::default()
        };
        for (name, default) in &template.parameters {
            symbols
                .parameters
                .insert(name.clone(), default.clone().unwrap());
        }
        let props = symbols.resolve(&template.resources[0].properties);
        assert_eq!(props["A"], Json::Null, "AWS::NoValue");
        assert!(props.get("A").is_none(), "a NoValue property is left out");
        assert_eq!(props["B"], "yes");
        assert_eq!(props["C"], "no");
        assert_eq!(
            props["L"],
            serde_json::json!(["kept", "open"]),
            "NoValue list items are left out"
        );
    }

    #[test]
    fn intrinsics_resolve_in_short_and_long_form() {
        let template = Template::parse(
            r#"
Parameters:
  Size: {Type: Number, Default: 7}
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      A: !Ref Size
      B: !GetAtt Dlq.Arn
      C: !Sub "${AWS::Region}-${Q}-${Dlq.Arn}"
      D: {"Fn::GetAtt": [Dlq, Arn]}
      E: {Ref: Size}
      F: !Sub ["${x}!", {x: !Ref Size}]
"#,
        )
        .unwrap();
        let mut symbols = Symbols::default();
        for (name, default) in &template.parameters {
            symbols
                .parameters
                .insert(name.clone(), default.clone().unwrap());
        }
        symbols
            .parameters
            .insert("AWS::Region".into(), "us-east-1".into());
        symbols.refs.insert("Q".into(), "http://q".into());
        symbols
            .attributes
            .insert("Dlq.Arn".into(), "arn:dlq".into());
        let props = symbols.resolve(&template.resource("Q").unwrap().properties);
        assert_eq!(props["A"], "7");
        assert_eq!(props["B"], "arn:dlq");
        assert_eq!(props["C"], "us-east-1-http://q-arn:dlq");
        assert_eq!(props["D"], "arn:dlq");
        assert_eq!(props["E"], "7");
        assert_eq!(props["F"], "7!");
    }
}
