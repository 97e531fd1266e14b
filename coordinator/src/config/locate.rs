//! Where in a task file a problem is: the line of a key, and the key at a
//! byte offset, from the spans the TOML parser keeps. Used only to word
//! errors; the file's meaning comes from the serde structs in `config`.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// 1-based line and column of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn line(text: &str, span: &Range<usize>) -> usize {
    line_column(text, span.start).0
}

/// The line of a key path such as `training.quorum`, `task.members` or
/// `columns[1].name` (text after a space, as in `columns[0] (chol)`, is
/// ignored). When the last key is absent (a default value), the line of the
/// deepest table present.
pub(super) fn line_of(text: &str, key: &str) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    let key = key.split(' ').next().unwrap_or(key);
    let mut table = document.get_ref();
    let mut found = None;
    for segment in key.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some((k, v)) = table.get_key_value(name) else {
            break;
        };
        found = Some(line(text, &k.span()));
        let value = match (v.get_ref(), index) {
            (DeValue::Array(items), Some(i)) => match items.get(i) {
                Some(item) => {
                    found = Some(line(text, &item.span()));
                    item.get_ref()
                }
                None => break,
            },
            (value, _) => value,
        };
        match value {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    found
}

/// The key path (as `training.rounds` or `columns[1].name`) at byte
/// `offset`: the innermost key whose name or value covers it.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let document = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    find(document.get_ref(), offset, &mut path).then(|| path.join("."))
}

/// Pushes onto `path` the keys down to the one at `offset`. A table's span
/// covers only its header, so every table is searched.
fn find(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    let covers = |span: Range<usize>| span.contains(&offset);
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if covers(key.span()) {
            return true;
        }
        match value.get_ref() {
            DeValue::Table(inner) if find(inner, offset, path) => return true,
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(last) = path.last_mut() {
                        *last = format!("{}[{i}]", key.get_ref());
                    }
                    let inside = match item.get_ref() {
                        DeValue::Table(inner) => find(inner, offset, path),
                        _ => false,
                    };
                    if inside || covers(item.span()) {
                        return true;
                    }
                }
                if let Some(last) = path.last_mut() {
                    *last = key.get_ref().to_string();
                }
            }
            _ => {}
        }
        if covers(value.span()) {
            return true;
        }
        path.pop();
    }
    false
}

/// serde's "unknown field `x`, expected one of `a`, `b`" as
/// "unknown key `x`; allowed: a, b"; any other message as it is.
pub(super) fn reword(message: &str) -> String {
    let message = message.trim_end().replace('\n', "; ");
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((name, rest)) = rest.split_once('`') else {
        return message;
    };
    let allowed = rest
        .trim_start_matches(", expected one of ")
        .trim_start_matches(", expected ")
        .replace(" or ", ", ")
        .replace('`', "");
    if allowed.starts_with(", there are no fields") {
        return format!("unknown key `{name}`; this table has no keys");
    }
    format!("unknown key `{name}`; allowed: {allowed}")
}
