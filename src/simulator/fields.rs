//! The `fields=` expansion syntax: `id,text,replies.limit(50){id,from{id}}`.

/// One requested field, with its modifiers and sub-fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub limit: Option<usize>,
    pub children: Vec<Field>,
}

/// Parses a field list. Unknown syntax is skipped rather than rejected, as lenient as Meta.
pub fn parse(s: &str) -> Vec<Field> {
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    parse_list(&chars, &mut pos)
}

fn parse_list(c: &[char], pos: &mut usize) -> Vec<Field> {
    let mut out = Vec::new();
    while *pos < c.len() {
        match c[*pos] {
            '}' => {
                *pos += 1;
                return out;
            }
            ',' | ' ' => *pos += 1,
            _ => {
                if let Some(f) = parse_field(c, pos) {
                    out.push(f);
                }
            }
        }
    }
    out
}

fn parse_field(c: &[char], pos: &mut usize) -> Option<Field> {
    let name = take_ident(c, pos);
    let mut field = Field {
        name,
        limit: None,
        children: Vec::new(),
    };
    while *pos < c.len() && c[*pos] == '.' {
        *pos += 1;
        let modifier = take_ident(c, pos);
        if *pos < c.len() && c[*pos] == '(' {
            *pos += 1;
            let start = *pos;
            while *pos < c.len() && c[*pos] != ')' {
                *pos += 1;
            }
            let arg: String = c[start..*pos].iter().collect();
            *pos += 1;
            if modifier == "limit" {
                field.limit = arg.trim().parse().ok();
            }
        }
    }
    if *pos < c.len() && c[*pos] == '{' {
        *pos += 1;
        field.children = parse_list(c, pos);
    }
    if field.name.is_empty() {
        *pos += 1;
        return None;
    }
    Some(field)
}

fn take_ident(c: &[char], pos: &mut usize) -> String {
    let start = *pos;
    while *pos < c.len() && (c[*pos].is_alphanumeric() || c[*pos] == '_') {
        *pos += 1;
    }
    c[start..*pos].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, limit: Option<usize>, children: Vec<Field>) -> Field {
        Field {
            name: name.into(),
            limit,
            children,
        }
    }

    #[test]
    fn nested_fields() {
        assert_eq!(
            parse("id,text,replies.limit(50){id,from{id}},comments_count"),
            vec![
                f("id", None, vec![]),
                f("text", None, vec![]),
                f(
                    "replies",
                    Some(50),
                    vec![
                        f("id", None, vec![]),
                        f("from", None, vec![f("id", None, vec![])])
                    ]
                ),
                f("comments_count", None, vec![]),
            ]
        );
        assert_eq!(parse(""), vec![]);
        assert_eq!(parse("a,,{b"), vec![f("a", None, vec![])]);
    }
}
