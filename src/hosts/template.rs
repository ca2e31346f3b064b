//! The pre-host and post-host command templates: split once into words (no shell), `{context}`
//! filled in per host.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTemplate {
    words: Vec<String>,
}

impl HostTemplate {
    pub fn parse(text: &str) -> Result<Self, String> {
        let words = crate::template::split_words(text, "lb-drain {context}")?;
        for word in &words {
            let rest = word.replace("{context}", "");
            if let Some(start) = rest.find('{')
                && rest[start..].contains('}')
            {
                return Err(format!(
                    "unknown placeholder in '{text}': a host command knows only {{context}}"
                ));
            }
        }
        Ok(HostTemplate { words })
    }

    pub fn render(&self, context: &str) -> Vec<String> {
        self.words
            .iter()
            .map(|word| word.replace("{context}", context))
            .collect()
    }
}

impl fmt::Display for HostTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_words::join(&self.words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_the_context_and_refuses_other_placeholders() {
        let template = HostTemplate::parse("lb 'drain {context}' --host={context}").unwrap();
        assert_eq!(template.render("b"), ["lb", "drain b", "--host=b"]);
        let error = HostTemplate::parse("lb {id}").unwrap_err();
        assert!(error.contains("only {context}"), "{error}");
        assert!(HostTemplate::parse("").is_err());
    }
}
