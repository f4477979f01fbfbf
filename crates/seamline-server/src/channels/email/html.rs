//! HTML mail as plain text: the inbox never renders customer HTML. Tags
//! go, `<script>`/`<style>` go with their content, block tags become line
//! breaks, entities are decoded and links keep their address as text.

/// Elements whose content is not text the customer wrote.
const DROPPED: [&str; 4] = ["script", "style", "head", "title"];
/// Elements that start a new line.
const BLOCKS: [&str; 12] = [
    "br",
    "p",
    "div",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "blockquote",
    "table",
    "hr",
];

pub fn to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&decode(&rest[..start]));
        let Some(len) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[start + 1..start + len];
        rest = &rest[start + len + 1..];
        let name = tag_name(tag);
        if DROPPED.contains(&name.as_str()) && !tag.starts_with('/') {
            rest = skip_past_close(rest, &name);
        } else if name == "a" && !tag.starts_with('/') {
            if let Some(href) = attribute(tag, "href") {
                rest = link(rest, &decode(&href), &mut out);
            }
        } else if BLOCKS.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    out.push_str(&decode(rest));
    tidy(&out)
}

fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('/')
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn skip_past_close<'a>(rest: &'a str, name: &str) -> &'a str {
    let lower = rest.to_ascii_lowercase();
    match lower.find(&format!("</{name}")) {
        Some(at) => rest[at..].find('>').map_or("", |end| &rest[at + end + 1..]),
        None => "",
    }
}

/// Writes the link's text, then its address when it differs.
fn link<'a>(rest: &'a str, href: &str, out: &mut String) -> &'a str {
    let lower = rest.to_ascii_lowercase();
    let Some(end) = lower.find("</a") else {
        return rest;
    };
    let text = to_text(&rest[..end]);
    out.push_str(&text);
    if text.trim() != href.trim_start_matches("mailto:") && !href.is_empty() {
        out.push_str(&format!(" ({href})"));
    }
    rest[end..]
        .find('>')
        .map_or("", |close| &rest[end + close + 1..])
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let value = &tag[at..];
    let quote = value.chars().next()?;
    if quote == '"' || quote == '\'' {
        value[1..].split(quote).next().map(str::to_owned)
    } else {
        value.split_whitespace().next().map(str::to_owned)
    }
}

fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let entity = rest
            .find(';')
            .filter(|end| *end <= 10)
            .map(|end| &rest[1..end]);
        match entity.and_then(entity_char) {
            Some(c) => {
                out.push(c);
                rest = &rest[entity.map_or(1, |e| e.len() + 2)..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity_char(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = entity.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Collapses runs of spaces and of blank lines.
fn tidy(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut out: Vec<&str> = Vec::new();
    for line in &lines {
        if !(line.is_empty() && out.last().is_none_or(|l| l.is_empty())) {
            out.push(line);
        }
    }
    out.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn scripts_and_tags_go_text_and_links_stay() {
        let html = r#"<html><head><title>x</title><style>p{}</style></head><body>
            <p>Hello &amp; welcome</p><script>alert('x')</script>
            <p>See <a href="https://shop.example/o/1">your order</a></p></body></html>"#;
        assert_eq!(
            to_text(html),
            "Hello & welcome\n\nSee your order (https://shop.example/o/1)"
        );
    }

    #[test]
    fn broken_markup_never_panics() {
        assert_eq!(to_text("a <b"), "a");
        assert_eq!(to_text("<script>never closed"), "");
        assert_eq!(to_text("x &#128512; &bogus; &"), "x 😀 &bogus; &");
    }
}
