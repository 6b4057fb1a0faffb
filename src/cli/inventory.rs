//! `tagd admin resource ...` and `generate`: the resource inventory, registered one at
//! a time or in bulk from CSV/JSON, exported in the same formats, and synthetic data.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::identity::done;
use super::output::{print_rows, progress, row, sink, Output};
use super::{find_project, pick_domain, project_id};
use crate::core::admin::{Admin, ResourceSpec};
use crate::store::ResourceFilter;

/// A bulk file's format. Import also tells it from a `.json` file name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// `project_id,resource_type,resource_id,name` with that header line.
    #[default]
    Csv,
    /// An array of objects with those four fields.
    Json,
}

/// Resources registered (and exported) per store write: large enough to be quick,
/// small enough that the progress bar moves.
const CHUNK: usize = 2_000;

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Register one resource.
    Add {
        #[arg(long)]
        domain: Option<String>,
        /// Project id or name (omit for global resource types).
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "type")]
        resource_type: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Register resources from a JSON array or a CSV file with the header
    /// `project_id,resource_type,resource_id,name`.
    ///
    /// Every row is checked before any is written: a bad row names its line and
    /// registers nothing. Rows are then written in chunks, with a progress bar when
    /// standard error is a terminal. Registering a resource again keeps its tags and
    /// takes the new name, so an import can be repeated.
    Import {
        #[arg(long)]
        domain: Option<String>,
        /// The file to read; `-` reads standard input.
        file: PathBuf,
        /// The file's format [default: json for a .json file name, else csv].
        #[arg(long)]
        format: Option<FileFormat>,
    },
    /// Write resources in the format `import` reads (CSV with its header, or a JSON
    /// array), so an export can be imported elsewhere.
    Export {
        #[arg(long)]
        domain: Option<String>,
        /// Project id or name; without it, every resource of the domain, global ones
        /// included.
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "type")]
        resource_type: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: FileFormat,
        /// The file to write; `-` or none writes standard output.
        file: Option<PathBuf>,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "type")]
        resource_type: Option<String>,
    },
    /// Remove one resource and its tags.
    Remove {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long = "type")]
        resource_type: String,
        #[arg(long)]
        id: String,
    },
}

pub async fn resource(
    admin: &Admin,
    output: Output,
    command: ResourceCommand,
) -> anyhow::Result<()> {
    match command {
        ResourceCommand::Add {
            domain,
            project,
            resource_type,
            id,
            name,
        } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let spec = ResourceSpec {
                project_id: project_id(admin, &d, project.as_deref()).await?,
                resource_type,
                resource_id: id,
                name,
            };
            let created = admin.register(&d, &[spec]).await?;
            done(
                output,
                if created == 1 {
                    "registered"
                } else {
                    "already registered; name updated"
                },
                row([("registered", json!(created == 1))]),
            );
        }
        ResourceCommand::Import {
            domain,
            file,
            format,
        } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let specs = read_specs(&file, format)?;
            let bar = progress(specs.len() as u64, "resources");
            let created = admin
                .register_in_chunks(&d, &specs, CHUNK, |n| bar.set_position(n as u64))
                .await;
            bar.finish_and_clear();
            let created = created?;
            done(
                output,
                &format!("{} resources read, {created} newly registered", specs.len()),
                row([("read", json!(specs.len())), ("registered", json!(created))]),
            );
        }
        ResourceCommand::Export {
            domain,
            project,
            resource_type,
            format,
            file,
        } => {
            let filter = resource_filter(admin, domain, project, resource_type).await?;
            let written = export(admin, filter, format, file.as_deref()).await?;
            if file.as_deref().is_some_and(|f| f.as_os_str() != "-") {
                eprintln!("{written} resources exported");
            }
        }
        ResourceCommand::List {
            domain,
            project,
            resource_type,
        } => {
            let filter = resource_filter(admin, domain, project, resource_type).await?;
            let rows: Vec<_> = admin
                .list(&filter)
                .await?
                .into_iter()
                .map(|r| {
                    row([
                        ("project_id", json!(r.at.project_id)),
                        ("resource_type", json!(r.at.resource_type)),
                        ("resource_id", json!(r.at.resource_id)),
                        ("name", json!(r.name)),
                    ])
                })
                .collect();
            print_rows(
                output,
                &["project_id", "resource_type", "resource_id", "name"],
                &rows,
            );
        }
        ResourceCommand::Remove {
            domain,
            project,
            resource_type,
            id,
        } => {
            let d = pick_domain(admin, domain.as_deref()).await?;
            let spec = ResourceSpec {
                project_id: project_id(admin, &d, project.as_deref()).await?,
                resource_type,
                resource_id: id,
                name: None,
            };
            if admin.remove(&d, &[spec]).await? == 0 {
                bail!("no such resource is registered; see `tagd admin resource list`");
            }
            done(output, "removed", row([("removed", json!(true))]));
        }
    }
    Ok(())
}

/// Streams the resources `filter` keeps, a page at a time (the listing is ordered, so
/// pages neither repeat nor skip while nothing is registered meanwhile). Returns how
/// many were written.
async fn export(
    admin: &Admin,
    mut filter: ResourceFilter,
    format: FileFormat,
    file: Option<&Path>,
) -> anyhow::Result<usize> {
    let mut out = sink(file)?;
    let mut written = 0;
    filter.limit = Some(CHUNK);
    match format {
        FileFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            while let Some(page) = next_page(admin, &mut filter).await? {
                for resource in page {
                    // The header comes from ResourceSpec's fields, the ones import reads.
                    w.serialize(ResourceSpec::from(resource))?;
                    written += 1;
                }
            }
            if written == 0 {
                // An empty export still has the header, so it imports (as nothing).
                w.write_record(["project_id", "resource_type", "resource_id", "name"])?;
            }
            w.flush()?;
        }
        FileFormat::Json => {
            out.write_all(b"[")?;
            while let Some(page) = next_page(admin, &mut filter).await? {
                for resource in page {
                    out.write_all(if written == 0 { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut out, &ResourceSpec::from(resource))?;
                    written += 1;
                }
            }
            out.write_all(b"\n]\n")?;
        }
    }
    out.flush().context("cannot write the export")?;
    Ok(written)
}

/// The next page of a listing, or `None` past the last one.
async fn next_page(
    admin: &Admin,
    filter: &mut ResourceFilter,
) -> anyhow::Result<Option<Vec<crate::core::model::Resource>>> {
    if filter.limit.is_none() {
        return Ok(None);
    }
    let page = admin.list(filter).await?;
    if page.len() < CHUNK {
        // The last page: `limit: None` marks the listing as done.
        filter.limit = None;
    }
    filter.offset += page.len();
    Ok((!page.is_empty()).then_some(page))
}

/// Reads resource specs from a JSON array or CSV, from a file or standard input.
fn read_specs(path: &Path, format: Option<FileFormat>) -> anyhow::Result<Vec<ResourceSpec>> {
    let stdin = path.as_os_str() == "-";
    let text = if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let name = if stdin {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let json = match format {
        Some(f) => f == FileFormat::Json,
        None => path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json")),
    };
    if json {
        return serde_json::from_str(&text)
            .with_context(|| format!("{name} is not a JSON array of resources"));
    }
    crate::core::admin::parse_resource_csv(&text).with_context(|| name)
}

/// `tagd admin generate`: reproducible synthetic disks with five tags each.
pub async fn generate(
    admin: &Admin,
    domain: Option<&str>,
    project: &str,
    resources: usize,
    seed: u64,
    resource_type: &str,
) -> anyhow::Result<()> {
    crate::core::tagging::known_type("--type", resource_type)?;
    let d = pick_domain(admin, domain).await?;
    let p = find_project(admin, &d, project).await?;
    let started = std::time::Instant::now();
    let mut last = 0;
    crate::datagen::generate(
        admin.store(),
        &d.id,
        &p.id,
        resource_type,
        resources,
        seed,
        2_000,
        |done| {
            if done - last >= 100_000 || done == resources {
                eprintln!("{done} / {resources} resources ({:.0?})", started.elapsed());
                last = done;
            }
        },
    )
    .await?;
    println!(
        "generated {resources} resources with {} tags in {:.1?}",
        resources * 5,
        started.elapsed()
    );
    Ok(())
}

/// Every resource of a domain (the only one, if not named), narrowed to a project and
/// a type when given: what `resource list` and `resource export` read.
async fn resource_filter(
    admin: &Admin,
    domain: Option<String>,
    project: Option<String>,
    resource_type: Option<String>,
) -> anyhow::Result<ResourceFilter> {
    let d = pick_domain(admin, domain.as_deref()).await?;
    Ok(ResourceFilter {
        domain_id: Some(d.id.clone()),
        project_id: project_id(admin, &d, project.as_deref()).await?,
        resource_type,
        limit: None,
        offset: 0,
    })
}
