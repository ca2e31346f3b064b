//! The pre-stop command template: split once into words at argument parsing (no shell ever runs
//! it), then `{placeholder}`s are filled in per old container.

use std::fmt;

const PLACEHOLDERS: [&str; 6] = ["id", "short_id", "name", "service", "project", "addr"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    words: Vec<String>,
}

/// What a placeholder stands for, for one container.
pub struct Values<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub service: &'a str,
    pub project: &'a str,
    /// The container's first IP address on its networks (empty when it has none).
    pub addr: &'a str,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let words = split_words(text, "docker exec {id} touch /.dead")?;
        for word in &words {
            for name in placeholders_in(word)? {
                if !PLACEHOLDERS.contains(&name) {
                    return Err(format!(
                        "unknown placeholder {{{name}}} in '{text}': use one of {}",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
                    ));
                }
            }
        }
        Ok(Template { words })
    }

    /// The program and its arguments for one container.
    pub fn render(&self, values: &Values) -> Vec<String> {
        self.words
            .iter()
            .map(|word| {
                PLACEHOLDERS.iter().fold(word.clone(), |word, name| {
                    let value = match *name {
                        "id" => values.id,
                        "short_id" => short_id(values.id),
                        "name" => values.name,
                        "service" => values.service,
                        "addr" => values.addr,
                        _ => values.project,
                    };
                    word.replace(&format!("{{{name}}}"), value)
                })
            })
            .collect()
    }
}

/// A command template's words, as a shell would split them (no shell runs them); `example` is
/// what the error for an empty one suggests.
pub fn split_words(text: &str, example: &str) -> Result<Vec<String>, String> {
    let words = shell_words::split(text)
        .map_err(|error| format!("cannot split '{text}' into words ({error}): check its quotes"))?;
    if words.is_empty() {
        return Err(format!(
            "the template is empty: give a command, e.g. '{example}'"
        ));
    }
    Ok(words)
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_words::join(&self.words))
    }
}

fn placeholders_in(word: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = word;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in '{word}': write placeholders like {{id}}"))?;
        names.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// Docker's 12-character short id.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            id: "0123456789abcdef0123",
            name: "shop-web-3",
            service: "web",
            project: "shop",
            addr: "172.20.0.3",
        }
    }

    #[test]
    fn renders_every_placeholder_per_word_without_a_shell() {
        let template = Template::parse(
            "docker exec {id} sh -c 'touch /.dead; echo {short_id} {name} {service}.{project}'",
        )
        .unwrap();
        assert_eq!(
            template.render(&values()),
            [
                "docker",
                "exec",
                "0123456789abcdef0123",
                "sh",
                "-c",
                "touch /.dead; echo 0123456789ab shop-web-3 web.shop"
            ]
        );
    }

    #[test]
    fn rejects_bad_templates_with_the_fix() {
        let cases = [
            ("docker exec {id} 'touch", "check its quotes"),
            ("", "the template is empty"),
            (
                "docker exec {container} touch /.dead",
                "unknown placeholder {container}",
            ),
            ("docker exec {id touch", "unclosed '{'"),
        ];
        for (text, expected) in cases {
            let error = Template::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
