//! What the admin commands show: aligned tables for a person, JSON for a script, and
//! progress bars on long work. One renderer, so every listing looks and parses alike.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

/// How a listing or report is printed (`--output`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns under a header, for reading.
    #[default]
    Table,
    /// One JSON document (an array of objects, or one object), for scripts.
    Json,
}

/// Rows of a listing, each a JSON object with the same keys in the same order. The
/// table's header is the keys in upper case; `columns` names them for an empty listing.
pub fn print_rows(output: Output, columns: &[&str], rows: &[Map<String, Value>]) {
    let text = match output {
        Output::Json => json(&Value::Array(
            rows.iter().cloned().map(Value::Object).collect(),
        )),
        Output::Table => table(columns, rows),
    };
    print!("{text}");
}

/// One record (a summary, a created thing): JSON, or `key  value` lines.
pub fn print_record(output: Output, record: &Map<String, Value>) {
    match output {
        Output::Json => print!("{}", json(&Value::Object(record.clone()))),
        Output::Table => {
            let width = record.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (k, v) in record {
                println!("{k:<width$}  {}", cell(v));
            }
        }
    }
}

fn json(value: &Value) -> String {
    // Serialising a Value (string keys only) cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// A value as a table shows it: strings bare, nothing for null.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn table(columns: &[&str], rows: &[Map<String, Value>]) -> String {
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.get(*c).map(cell).unwrap_or_default())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in &body {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&body) {
        let last = line.len().saturating_sub(1);
        for (i, (c, w)) in line.iter().zip(&widths).enumerate() {
            // The last column is not padded, so lines carry no trailing spaces.
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push('\n');
    }
    out
}

/// Builds one row from `(column, value)` pairs, in order.
pub fn row<const N: usize>(cells: [(&str, Value); N]) -> Map<String, Value> {
    cells.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Unix seconds as RFC 3339 (UTC), as listings show times.
pub fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// A progress bar of `len` units on standard error, drawn only when a person watches
/// (stderr is a terminal): scripts and logs get the summary line alone.
pub fn progress(len: u64, unit: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "[{{bar:30}}] {{human_pos:>11}}/{{human_len:<11}} {unit}  {{elapsed}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Where an export goes: a file, or standard output for `-` (and when no file is named).
pub fn sink(path: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Write>> {
    use anyhow::Context;
    Ok(match path {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_under_a_header() {
        let rows = [
            row([
                ("id", json!("a")),
                ("name", json!("first")),
                ("n", json!(1)),
            ]),
            row([
                ("id", json!("bbbb")),
                ("name", Value::Null),
                ("n", json!(22)),
            ]),
        ];
        assert_eq!(
            table(&["id", "name", "n"], &rows),
            "ID    NAME   N\na     first  1\nbbbb         22\n"
        );
        assert_eq!(table(&["id", "name"], &[]), "ID  NAME\n");
    }
}
