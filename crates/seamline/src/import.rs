//! `seamline import FILE`: Segment-style JSONL (one message per line) or
//! CSV (a header row; dotted columns such as `properties.revenue` nest).
//!
//! Bad lines are reported with their line numbers and skipped; the rest is
//! imported. Progress is checkpointed per file content after every commit,
//! so an interrupted import resumes where it stopped; lines without a
//! `messageId` get one derived from the line's number and content, so
//! re-importing the same file, or the file with lines appended, never
//! doubles anything.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use seamline_core::tracking::{self, Envelope};
use seamline_core::{EventId, FieldError, WorkspaceId};
use seamline_store::{NewEvent, Store};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Settings;
use crate::runtime;

const CHUNK: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// Workspace id (optional when there is only one).
    #[arg(long)]
    pub workspace: Option<WorkspaceId>,
    /// File format [default: from the extension; .csv is CSV, anything else JSONL].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Start from the first line even if an earlier import of this file stopped midway.
    #[arg(long)]
    pub restart: bool,
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct Summary {
    pub imported: u64,
    pub duplicates: u64,
    pub bad_lines: u64,
    pub resumed_after_line: u64,
}

pub async fn run(settings: Settings, args: ImportArgs) -> anyhow::Result<()> {
    let store = runtime::open_store(&settings).await?;
    let workspace = runtime::pick_workspace(store.as_ref(), args.workspace).await?;
    let format = args.format.unwrap_or_else(|| format_of(&args.file));
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template(
            "{spinner} importing {bytes}/{total_bytes} {wide_bar} {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = import(
        store.as_ref(),
        workspace,
        &args.file,
        format,
        args.restart,
        &progress,
    )
    .await?;
    progress.finish_and_clear();
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
        _ => Format::Jsonl,
    }
}

pub async fn import(
    store: &dyn Store,
    workspace: WorkspaceId,
    path: &Path,
    format: Format,
    restart: bool,
    progress: &ProgressBar,
) -> anyhow::Result<Summary> {
    let source = fingerprint(path)?;
    let resume_after = if restart {
        0
    } else {
        store
            .import_checkpoint(workspace, &source)
            .await?
            .unwrap_or(0)
    };
    let mut summary = Summary {
        resumed_after_line: resume_after,
        ..Summary::default()
    };
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = progress.wrap_read(file);
    let envelope = Envelope {
        received_at: Utc::now(),
        request_ip: None,
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut last_line = resume_after;
    for (line, record) in records(reader, format)? {
        if line <= resume_after {
            continue;
        }
        last_line = line;
        let parsed = record.and_then(|text| {
            let mut message_id = || derived_message_id(line, &text);
            tracking::parse_message(&text, &envelope, &mut message_id)
        });
        match parsed {
            Ok(event) => chunk.push(NewEvent {
                id: EventId(Uuid::now_v7()),
                workspace_id: workspace,
                event,
            }),
            Err(error) => {
                summary.bad_lines += 1;
                progress.suspend(|| eprintln!("line {line}: {}", describe(&error)));
            }
        }
        if chunk.len() == CHUNK {
            commit(
                store,
                workspace,
                &source,
                &mut chunk,
                last_line,
                &mut summary,
            )
            .await?;
        }
    }
    commit(
        store,
        workspace,
        &source,
        &mut chunk,
        last_line,
        &mut summary,
    )
    .await?;
    Ok(summary)
}

async fn commit(
    store: &dyn Store,
    workspace: WorkspaceId,
    source: &str,
    chunk: &mut Vec<NewEvent>,
    last_line: u64,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let flags = store.append_events(chunk).await?;
    let new = flags.iter().filter(|n| **n).count() as u64;
    summary.imported += new;
    summary.duplicates += flags.len() as u64 - new;
    chunk.clear();
    store
        .set_import_checkpoint(workspace, source, last_line)
        .await?;
    Ok(())
}

fn describe(error: &FieldError) -> String {
    if error.field.is_empty() {
        error.message.clone()
    } else {
        format!("{}: {}", error.field, error.message)
    }
}

/// The `messageId` of a line that has none. Not derived from the whole
/// file: a log imported again after lines were appended to it must map its
/// old lines to the same ids.
fn derived_message_id(line: u64, text: &str) -> String {
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!("import-{}-{line}", &digest[..16])
}

/// Identifies a file by its content, so a renamed copy resumes too.
fn fingerprint(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

type Record = (u64, Result<String, FieldError>);

/// Each message of the file as JSON text, with its 1-based line number.
fn records(
    reader: impl Read + 'static,
    format: Format,
) -> anyhow::Result<Box<dyn Iterator<Item = Record>>> {
    Ok(match format {
        Format::Jsonl => Box::new(jsonl_records(reader)),
        Format::Csv => Box::new(csv_records(reader)?),
    })
}

fn jsonl_records(reader: impl Read) -> impl Iterator<Item = Record> {
    BufReader::new(reader)
        .lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let number = index as u64 + 1;
            match line {
                Ok(text) if text.trim().is_empty() => None,
                // Windows tools start UTF-8 files with a byte-order mark.
                Ok(text) if index == 0 && text.starts_with('\u{feff}') => {
                    Some((number, Ok(text['\u{feff}'.len_utf8()..].to_owned())))
                }
                Ok(text) => Some((number, Ok(text))),
                Err(e) => Some((
                    number,
                    Err(FieldError::new(
                        "unreadable",
                        "",
                        format!("not UTF-8 text: {e}"),
                    )),
                )),
            }
        })
}

fn csv_records(reader: impl Read + 'static) -> anyhow::Result<impl Iterator<Item = Record>> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(CrlfToLf::new(BufReader::new(reader)));
    let headers = csv.headers().context("reading the CSV header row")?.clone();
    Ok(csv.into_records().map(move |record| match record {
        Ok(record) => {
            let line = record.position().map_or(0, |p| p.line());
            (line, Ok(csv_to_json(&headers, &record).to_string()))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line());
            (line, Err(FieldError::new("invalid_csv", "", e.to_string())))
        }
    }))
}

/// Turns CRLF line ends into LF before the CSV parser sees them. The `csv`
/// crate counts lines by LF but consumes a CRLF's LF only with the next
/// record, so in CRLF files (RFC 4180's and Excel's line end) every row was
/// reported one line early (BurntSushi/rust-csv#395). A CRLF inside a quoted
/// value becomes LF too.
struct CrlfToLf<R> {
    inner: R,
    line: Vec<u8>,
    at: usize,
}

impl<R: BufRead> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            line: Vec::new(),
            at: 0,
        }
    }
}

impl<R: BufRead> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.line.len() {
            self.line.clear();
            self.at = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            if self.line.ends_with(b"\r\n") {
                self.line.truncate(self.line.len() - 2);
                self.line.push(b'\n');
            }
        }
        let n = out.len().min(self.line.len() - self.at);
        out[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A CSV row as a message: `properties.revenue` → `{"properties": {"revenue": …}}`.
/// Property values that read as numbers or booleans become those.
pub fn csv_to_json(headers: &csv::StringRecord, record: &csv::StringRecord) -> Value {
    let mut message = Map::new();
    for (header, value) in headers.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        let mut path = header.trim().split('.');
        let Some(first) = path.next() else { continue };
        let rest: Vec<&str> = path.collect();
        if rest.is_empty() {
            message.insert(first.to_owned(), json!(value));
        } else {
            // Only properties are typed: ids and phones in traits stay text.
            let value = if first == "properties" {
                scalar(value)
            } else {
                json!(value)
            };
            insert_nested(&mut message, first, &rest, value);
        }
    }
    Value::Object(message)
}

fn insert_nested(map: &mut Map<String, Value>, key: &str, rest: &[&str], value: Value) {
    let Some((last, middle)) = rest.split_last() else {
        return;
    };
    let mut current = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    for part in middle {
        if !current.is_object() {
            *current = json!({});
        }
        current = match current.as_object_mut() {
            Some(object) => object
                .entry((*part).to_owned())
                .or_insert_with(|| json!({})),
            None => return,
        };
    }
    if let Some(object) = current.as_object_mut() {
        object.insert((*last).to_owned(), value);
    }
}

fn scalar(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => json!(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_becomes_lf_across_any_read_size() {
        let input: &[u8] = b"a,b\r\n\"x\r\ny\",2\r\nlone\rcr\n\r\nlast";
        let mut reader = CrlfToLf::new(BufReader::with_capacity(3, input));
        let mut out = Vec::new();
        let mut buf = [0; 2];
        loop {
            let n = reader.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"a,b\n\"x\ny\",2\nlone\rcr\n\nlast");
    }

    #[test]
    fn csv_line_numbers_are_the_file_lines_with_crlf_and_a_bom() {
        let text = "\u{feff}type,userId\r\ntrack,u1\r\n\"tr\r\nack\",u2\r\ntrack,u3\r\n";
        let lines: Vec<u64> = csv_records(std::io::Cursor::new(text.as_bytes().to_vec()))
            .expect("header")
            .map(|(line, _)| line)
            .collect();
        assert_eq!(lines, [2, 3, 5]);
    }

    #[test]
    fn a_byte_order_mark_does_not_spoil_the_first_jsonl_line() {
        let text = "\u{feff}{\"type\":\"track\"}\r\n{}\r\n";
        let records: Vec<Record> = jsonl_records(text.as_bytes()).collect();
        assert_eq!(records[0], (1, Ok("{\"type\":\"track\"}".to_owned())));
        assert_eq!(records[1], (2, Ok("{}".to_owned())));
    }

    #[test]
    fn dotted_csv_columns_nest_and_numbers_stay_numbers() {
        let headers = csv::StringRecord::from(vec![
            "type",
            "userId",
            "event",
            "properties.revenue",
            "properties.note",
            "context.traits.phone",
        ]);
        let record = csv::StringRecord::from(vec![
            "track",
            "007",
            "Order Completed",
            "12.5",
            "борщ",
            "+79161234567",
        ]);
        assert_eq!(
            csv_to_json(&headers, &record),
            json!({"type": "track", "userId": "007", "event": "Order Completed",
                   "properties": {"revenue": 12.5, "note": "борщ"},
                   "context": {"traits": {"phone": "+79161234567"}}})
        );
    }
}
