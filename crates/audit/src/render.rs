//! [`render_text`]: a JSON summary (from
//! [`describe_payload`](crate::describe_payload)) as indented `key: value`
//! text for people; lists of plain values stay on one line.

use serde_json::{Map, Value};

/// `value` as indented `key: value` lines.
pub fn render_text(value: &Value) -> String {
    let mut out = String::new();
    render(value, 0, &mut out);
    out
}

fn render(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) => render_map(map, indent, out),
        Value::Array(items) if items.iter().all(is_scalar) => {
            out.push_str(&scalar_list(items));
            out.push('\n');
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&"  ".repeat(indent));
                out.push_str("-\n");
                render(item, indent + 1, out);
            }
        }
        scalar => {
            out.push_str(&"  ".repeat(indent));
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn render_map(map: &Map<String, Value>, indent: usize, out: &mut String) {
    for (key, value) in map {
        out.push_str(&"  ".repeat(indent));
        out.push_str(key);
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                render_map(inner, indent + 1, out);
            }
            Value::Array(items) if !items.iter().all(is_scalar) => {
                out.push('\n');
                render(value, indent + 1, out);
            }
            Value::Array(items) => {
                out.push(' ');
                out.push_str(&scalar_list(items));
                out.push('\n');
            }
            Value::Object(_) => out.push_str(" {}\n"),
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

fn scalar_list(items: &[Value]) -> String {
    let texts: Vec<String> = items.iter().map(scalar_text).collect();
    format!("[{}]", texts.join(", "))
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}
