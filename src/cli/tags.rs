//! `tagd admin predefined-tag ...` and `tagd admin tags export|import`: a domain's
//! predefined tags, and a whole project's tags as JSON lines (see
//! [`crate::core::tag_lines`]), written through the same batch rules as the APIs.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::output::{print_record, print_rows, progress, row, sink, timestamp, Output};
use super::{find_project, pick_domain};
use crate::core::admin::Admin;
use crate::core::predefined::{Listing, OrderField};
use crate::core::providers::{DIS_STREAM, FABRIC_WORKSPACE, RDS_INSTANCE, WORKSPACE_DESKTOP};
use crate::core::query::ResourceQuery;
use crate::core::tag_lines::TagLine;
use crate::core::tagging::{BatchItem, ItemOutcome, Tagging};
use crate::core::tags::TagRules;

/// Lines applied per transaction: bounded, so an import of millions of lines neither
/// holds the writer long nor keeps them all in memory.
const BATCH: usize = 500;
/// Resources read per page on export.
const PAGE: u64 = 1_000;

#[derive(Debug, Subcommand)]
pub enum PredefinedTagCommand {
    /// List the domain's predefined tags, by key.
    List {
        #[arg(long)]
        domain: Option<String>,
        /// Only keys containing this (case-insensitive).
        #[arg(long)]
        key: Option<String>,
    },
    /// Add predefined tags (TMS's rules; at most 500 per domain). Adding one that
    /// exists refreshes its time.
    Add {
        #[arg(long)]
        domain: Option<String>,
        /// Tags as KEY=VALUE (the value may be empty: `KEY=`).
        #[arg(required = true, value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Remove predefined tags; ones that are not there are ignored.
    Remove {
        #[arg(long)]
        domain: Option<String>,
        #[arg(required = true, value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagsCommand {
    /// Write a project's tags as JSON lines, one resource a line:
    /// {"resource_type":..,"resource_id":..,"tags":[{"key":..,"value":..}]}.
    ///
    /// Every registered resource of the project has a line, untagged ones too. System
    /// tags (enterprise project) are not exported.
    Export {
        #[arg(long)]
        domain: Option<String>,
        /// Project id or name.
        #[arg(long)]
        project: String,
        /// The file to write; `-` or none writes standard output.
        file: Option<PathBuf>,
    },
    /// Set tags from JSON lines (as `tags export` writes them) on a project's resources.
    ///
    /// Each line's tags are added to its resource, overwriting the values of keys it
    /// already has, under the rules of the APIs: key and value characters and lengths
    /// (those of TMS or of the type's own API), no key twice, the type's tag limit.
    /// Lines are applied in transactions of 500; a refused line is reported with its
    /// number and reason and the others are applied; the exit status is 1 if any line
    /// was refused. Importing the same file again changes nothing more.
    Import {
        #[arg(long)]
        domain: Option<String>,
        /// Project id or name.
        #[arg(long)]
        project: String,
        /// Register resources that are not in the inventory yet (otherwise their lines
        /// are refused).
        #[arg(long)]
        register: bool,
        /// The file to read; `-` reads standard input.
        file: PathBuf,
    },
}

/// Parses `KEY=VALUE` arguments and validates them by TMS's rules, as the predefined-tag
/// API does.
fn pairs(raw: &[String]) -> anyhow::Result<Vec<crate::core::tags::Tag>> {
    let split = raw
        .iter()
        .map(|t| {
            t.split_once('=').ok_or_else(|| {
                anyhow::anyhow!(
                    "{t:?} is not KEY=VALUE; write e.g. env=prod (or env= for an empty value)"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(crate::api::tms::RULES.pairs(split.into_iter())?)
}

pub async fn predefined(
    admin: &Admin,
    output: Output,
    command: PredefinedTagCommand,
) -> anyhow::Result<()> {
    let tagging = Tagging::new(admin.store(), false);
    let everything = |key: Option<String>| Listing {
        key,
        value: None,
        order: OrderField::Key,
        descending: false,
        offset: 0,
        limit: None,
    };
    match command {
        PredefinedTagCommand::List { domain, key } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let (tags, _) = tagging.predefined(&d.id, &everything(key)).await?;
            let rows: Vec<_> = tags
                .into_iter()
                .map(|t| {
                    row([
                        ("key", json!(t.key)),
                        ("value", json!(t.value)),
                        ("updated_at", json!(timestamp(t.updated_at))),
                    ])
                })
                .collect();
            print_rows(output, &["key", "value", "updated_at"], &rows);
        }
        PredefinedTagCommand::Add { domain, tags } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let tags = pairs(&tags)?;
            tagging.add_predefined(&d.id, &tags).await.map_err(|e| {
                anyhow::anyhow!("{e}; the domain may hold at most {} predefined tags: remove some with `tagd admin predefined-tag remove`", crate::core::predefined::MAX_PER_DOMAIN)
            })?;
            let (_, total) = tagging.predefined(&d.id, &everything(None)).await?;
            super::identity::done(
                output,
                &format!(
                    "{} predefined tags added; the domain has {total}",
                    tags.len()
                ),
                row([("added", json!(tags.len())), ("total", json!(total))]),
            );
        }
        PredefinedTagCommand::Remove { domain, tags } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let tags = pairs(&tags)?;
            let (before, _) = tagging.predefined(&d.id, &everything(None)).await?;
            let present = tags
                .iter()
                .filter(|t| {
                    before
                        .iter()
                        .any(|p| p.key == t.key.as_str() && p.value == t.value.as_str())
                })
                .count();
            tagging.remove_predefined(&d.id, &tags).await?;
            super::identity::done(
                output,
                &format!(
                    "{present} predefined tags removed{}",
                    if present < tags.len() {
                        format!("; {} were not there", tags.len() - present)
                    } else {
                        String::new()
                    }
                ),
                row([
                    ("removed", json!(present)),
                    ("absent", json!(tags.len() - present)),
                ]),
            );
        }
    }
    Ok(())
}

/// The rule sets a type's tags may have been written under: TMS's (which tags every
/// type) and those of the type's own API, so whatever an API accepted imports again.
fn rules_for(resource_type: &str) -> Vec<TagRules> {
    let own = match resource_type {
        WORKSPACE_DESKTOP => Some(crate::api::workspace::RULES),
        FABRIC_WORKSPACE => Some(crate::api::fabric::RULES),
        RDS_INSTANCE => Some(crate::api::rds::RULES),
        DIS_STREAM => Some(crate::api::dis::RULES),
        _ => None,
    };
    std::iter::once(crate::api::tms::RULES).chain(own).collect()
}

pub async fn tags(admin: &Admin, output: Output, command: TagsCommand) -> anyhow::Result<()> {
    match command {
        TagsCommand::Export {
            domain,
            project,
            file,
        } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let p = find_project(admin, &d, &project).await?;
            let tagging = Tagging::new(admin.store(), false);
            let query = ResourceQuery {
                domain_id: d.id.clone(),
                projects: vec![p.id.clone()],
                ..Default::default()
            };
            let mut out = sink(file.as_deref())?;
            let mut offset = 0;
            let bar = progress(0, "resources");
            loop {
                let page = tagging.find(&query, offset, PAGE).await?;
                bar.set_length(page.total_count);
                let n = page.resources.len() as u64;
                for found in page.resources {
                    serde_json::to_writer(&mut out, &TagLine::from(found))?;
                    out.write_all(b"\n")?;
                }
                offset += n;
                bar.set_position(offset);
                if n < PAGE {
                    break;
                }
            }
            bar.finish_and_clear();
            out.flush().context("cannot write the export")?;
            if file.as_deref().is_some_and(|f| f.as_os_str() != "-") {
                eprintln!("{offset} resources of project {} exported", p.name);
            }
        }
        TagsCommand::Import {
            domain,
            project,
            register,
            file,
        } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let p = find_project(admin, &d, &project).await?;
            let tagging = Tagging::new(admin.store(), register);
            let report = import(&tagging, &d.id, &p.id, &file, register).await?;
            match output {
                Output::Table => println!(
                    "{} lines read, {} applied, {} refused",
                    report.read,
                    report.applied,
                    report.refused.len()
                ),
                Output::Json => print_record(
                    output,
                    &row([
                        ("read", json!(report.read)),
                        ("applied", json!(report.applied)),
                        (
                            "refused",
                            json!(report
                                .refused
                                .iter()
                                .map(|(line, reason)| json!({"line": line, "reason": reason}))
                                .collect::<Vec<_>>()),
                        ),
                    ]),
                ),
            }
            if !report.refused.is_empty() {
                bail!(
                    "{} of {} lines were refused (listed above with their line numbers); the others were applied. Fix those lines and import them again",
                    report.refused.len(),
                    report.read
                );
            }
        }
    }
    Ok(())
}

/// What an import did: lines read (blank ones aside), applied, and refused with reasons.
struct ImportReport {
    read: usize,
    applied: usize,
    refused: Vec<(usize, String)>,
}

async fn import(
    tagging: &Tagging,
    domain_id: &str,
    project_id: &str,
    file: &Path,
    register: bool,
) -> anyhow::Result<ImportReport> {
    let (reader, size): (Box<dyn BufRead>, u64) = if file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(std::io::BufReader::new(f)), size)
    };
    let bar = progress(size, "bytes");
    let mut report = ImportReport {
        read: 0,
        applied: 0,
        refused: Vec::new(),
    };
    let mut pending: Vec<(usize, BatchItem)> = Vec::with_capacity(BATCH);
    // Refusals are printed after each batch, in line order (a line refused by the
    // store is only known once its batch is applied).
    let mut printed = 0;
    let mut print_new = |report: &mut ImportReport| {
        report.refused[printed..].sort_by_key(|(line, _)| *line);
        bar.suspend(|| {
            for (line, reason) in &report.refused[printed..] {
                eprintln!("line {line}: {reason}");
            }
        });
        printed = report.refused.len();
    };
    for (i, text) in reader.lines().enumerate() {
        let number = i + 1;
        let text = text.with_context(|| format!("cannot read line {number}"))?;
        bar.inc(text.len() as u64 + 1);
        if text.trim().is_empty() {
            continue;
        }
        report.read += 1;
        let item = TagLine::parse(&text).and_then(|line| {
            line.item(domain_id, project_id, &rules_for(&line.resource_type))
                .map_err(|e| e.to_string())
        });
        match item {
            Ok(item) => pending.push((number, item)),
            Err(reason) => report.refused.push((number, reason)),
        }
        if pending.len() == BATCH {
            apply(tagging, &mut pending, &mut report, register).await?;
            print_new(&mut report);
        }
    }
    apply(tagging, &mut pending, &mut report, register).await?;
    print_new(&mut report);
    bar.finish_and_clear();
    Ok(report)
}

/// Applies the pending lines in one transaction and records each line's outcome.
async fn apply(
    tagging: &Tagging,
    pending: &mut Vec<(usize, BatchItem)>,
    report: &mut ImportReport,
    register: bool,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (numbers, items): (Vec<usize>, Vec<BatchItem>) =
        std::mem::take(pending).into_iter().unzip();
    let types: Vec<String> = items
        .iter()
        .map(|i| i.target.at.resource_type.clone())
        .collect();
    let outcomes = tagging.apply_each(items).await?;
    for ((number, outcome), resource_type) in numbers.into_iter().zip(outcomes).zip(types) {
        match outcome {
            ItemOutcome::Applied => report.applied += 1,
            ItemOutcome::NotFound => report.refused.push((
                number,
                if register {
                    "the resource is not registered in the project".to_owned()
                } else {
                    "the resource is not registered in the project; register it first (`tagd admin resource import`) or import with --register".to_owned()
                },
            )),
            ItemOutcome::LimitExceeded { limit, would_have } => report.refused.push((
                number,
                format!("the resource would have {would_have} tags; a {resource_type} resource may have at most {limit}"),
            )),
        }
    }
    Ok(())
}
