//! Canned responses: saved replies with `{{variables}}` filled in from the
//! customer and the operator. A misspelt variable is refused when the
//! template is saved, naming it, rather than sent to a customer as
//! `{{nmae}}`; a value that is missing renders the fallback written after
//! a bar, `{{first_name|there}}`, or nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::FieldError;

pub const MAX_TEMPLATE_CHARS: usize = 4096;
const MAX_SHORTCUT_CHARS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// The customer's full name.
    Name,
    /// Given, or the first word of `name`.
    FirstName,
    LastName,
    Email,
    Phone,
    /// The replying operator's display name.
    Operator,
}

impl Variable {
    pub const ALL: [Variable; 6] = [
        Variable::Name,
        Variable::FirstName,
        Variable::LastName,
        Variable::Email,
        Variable::Phone,
        Variable::Operator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Variable::Name => "name",
            Variable::FirstName => "first_name",
            Variable::LastName => "last_name",
            Variable::Email => "email",
            Variable::Phone => "phone",
            Variable::Operator => "operator",
        }
    }

    fn named(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the variables stand for in one reply; blank counts as missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub operator: Option<String>,
}

impl Values {
    fn get(&self, variable: Variable) -> Option<&str> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        match variable {
            Variable::Name => given(&self.name),
            Variable::FirstName => given(&self.first_name)
                .or_else(|| given(&self.name).and_then(|n| n.split_whitespace().next())),
            Variable::LastName => given(&self.last_name),
            Variable::Email => given(&self.email),
            Variable::Phone => given(&self.phone),
            Variable::Operator => given(&self.operator),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Variable {
        variable: Variable,
        fallback: Option<String>,
    },
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, FieldError> {
        if source.trim().is_empty() {
            return Err(FieldError::new("required", "body", "a template needs text"));
        }
        if source.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(FieldError::new(
                "too_long",
                "body",
                format!("at most {MAX_TEMPLATE_CHARS} characters"),
            ));
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let inside = &rest[open + 2..];
            let close = inside.find("}}").ok_or_else(|| {
                FieldError::new(
                    "unclosed_variable",
                    "body",
                    format!("{:?} is missing its closing }}}}", preview(&rest[open..])),
                )
            })?;
            let (name, fallback) = match inside[..close].split_once('|') {
                Some((name, fallback)) => (name, Some(fallback.trim().to_owned())),
                None => (&inside[..close], None),
            };
            let variable = Variable::named(name).ok_or_else(|| unknown(name))?;
            parts.push(Part::Variable { variable, fallback });
            rest = &inside[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The variables used, each once, in order.
    pub fn variables(&self) -> Vec<Variable> {
        let mut used = Vec::new();
        for part in &self.parts {
            if let Part::Variable { variable, .. } = part {
                if !used.contains(variable) {
                    used.push(*variable);
                }
            }
        }
        used
    }

    pub fn render(&self, values: &Values) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Variable { variable, fallback } => {
                    let value = values.get(*variable).or(fallback.as_deref());
                    out.push_str(value.unwrap_or_default());
                }
            }
        }
        out
    }
}

impl TryFrom<String> for Template {
    type Error = FieldError;
    fn try_from(source: String) -> Result<Self, FieldError> {
        Template::parse(&source)
    }
}

impl From<Template> for String {
    fn from(template: Template) -> Self {
        template.source
    }
}

fn unknown(name: &str) -> FieldError {
    let known: Vec<&str> = Variable::ALL.iter().map(|v| v.as_str()).collect();
    let name = name.trim();
    let what = if name.is_empty() {
        "an empty variable {{}}".to_owned()
    } else {
        format!("unknown variable {{{{{}}}}}", preview(name))
    };
    FieldError::new(
        "unknown_variable",
        "body",
        format!("{what}; use one of {}", known.join(", ")),
    )
}

/// The start of a long piece of text, for an error message.
fn preview(text: &str) -> String {
    text.chars().take(30).collect()
}

/// A saved reply that operators insert by its shortcut (`/delivery`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedResponse {
    pub shortcut: String,
    pub template: Template,
}

impl CannedResponse {
    /// Shortcuts are 1 to 32 of `a-z`, `0-9`, `_`, `-` (case and a leading
    /// `/` are dropped).
    pub fn new(shortcut: &str, body: &str) -> Result<Self, FieldError> {
        let shortcut = shortcut.trim().trim_start_matches('/').to_ascii_lowercase();
        let valid = (1..=MAX_SHORTCUT_CHARS).contains(&shortcut.chars().count())
            && shortcut
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(FieldError::new(
                "invalid_shortcut",
                "shortcut",
                "1 to 32 of a-z, 0-9, '_' and '-'",
            ));
        }
        Ok(Self {
            shortcut,
            template: Template::parse(body)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn olga() -> Values {
        Values {
            name: Some("Olga Smirnova".into()),
            operator: Some("Ivan".into()),
            ..Values::default()
        }
    }

    fn render(source: &str, values: &Values) -> String {
        Template::parse(source).unwrap().render(values)
    }

    #[test]
    fn variables_are_filled_in() {
        assert_eq!(
            render("Hi {{first_name}}, this is {{ operator }}.", &olga()),
            "Hi Olga, this is Ivan."
        );
        assert_eq!(render("{{NAME}}", &olga()), "Olga Smirnova");
        let given = Values {
            first_name: Some("Оля".into()),
            ..olga()
        };
        assert_eq!(render("{{first_name}}", &given), "Оля");
    }

    #[test]
    fn missing_values_use_the_fallback_or_nothing() {
        let nobody = Values {
            name: Some("  ".into()),
            ..Values::default()
        };
        assert_eq!(render("Hi {{first_name|there}}!", &nobody), "Hi there!");
        assert_eq!(
            render("Hi {{name| dear customer }}!", &nobody),
            "Hi dear customer!"
        );
        assert_eq!(render("Hi {{name}}!", &nobody), "Hi !");
        assert_eq!(render("Hi {{name|there}}!", &olga()), "Hi Olga Smirnova!");
    }

    #[test]
    fn unknown_variables_are_refused_by_name() {
        let err = Template::parse("Hi {{nmae}}").unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("unknown_variable", "body"));
        assert!(err.message.contains("{{nmae}}"), "{}", err.message);
        assert!(err.message.contains("first_name"));
        assert!(Template::parse("{{|x}}")
            .unwrap_err()
            .message
            .contains("empty"));
        assert!(Template::parse("{{{name}}}").is_err());
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert_eq!(
            Template::parse("Hi {{name").unwrap_err().code,
            "unclosed_variable"
        );
        assert_eq!(Template::parse("  ").unwrap_err().code, "required");
        let long = "x".repeat(MAX_TEMPLATE_CHARS + 1);
        assert_eq!(Template::parse(&long).unwrap_err().code, "too_long");
        // A lone closing pair or brace is just text.
        assert_eq!(render("a }} b { c", &olga()), "a }} b { c");
    }

    #[test]
    fn templates_list_their_variables_and_store_as_text() {
        let t = Template::parse("{{name}} {{operator}} {{name|x}}").unwrap();
        assert_eq!(t.variables(), [Variable::Name, Variable::Operator]);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"{{name}} {{operator}} {{name|x}}\"");
        assert_eq!(serde_json::from_str::<Template>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Template>("\"{{bogus}}\"").is_err());
    }

    #[test]
    fn canned_responses_have_clean_shortcuts() {
        let canned =
            CannedResponse::new("/Delivery", "We deliver in 2 days, {{first_name|friend}}.")
                .unwrap();
        assert_eq!(canned.shortcut, "delivery");
        for bad in ["", "/", "two words", "доставка", &"a".repeat(33)] {
            assert_eq!(
                CannedResponse::new(bad, "x").unwrap_err().field,
                "shortcut",
                "{bad:?}"
            );
        }
        assert_eq!(
            CannedResponse::new("ok", "{{x}}").unwrap_err().field,
            "body"
        );
    }

    proptest! {
        #[test]
        fn text_without_braces_renders_as_itself(text in "[^{}]{1,200}") {
            prop_assume!(!text.trim().is_empty());
            prop_assert_eq!(render(&text, &olga()), text);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,80}") {
            if let Ok(t) = Template::parse(&text) {
                let _ = t.render(&Values::default());
            }
        }
    }
}
