//! tagd: a resource-tag service that speaks the Huawei Cloud tagging APIs.
//!
//! # Layout
//!
//! - [`api`]: one adapter per API dialect (TMS, IAM, tagd's admin API), each owning its
//!   routes, wire types and error body, over the shared core.
//! - [`core`]: the domain: identities, the resource inventory, the providers catalogue,
//!   tag rules, the batch rules ([`core::batch`]) and the storage port ([`core::port`])
//!   every backend implements.
//! - [`auth`]: tokens and passwords, and who may act on which project.
//! - [`store`]: the backends of the port; SQLite with group commit is the default.
//! - [`config`], [`server`], [`tls`], [`cli`]: configuration, the server loop and its
//!   optional HTTPS, the command line.
//! - [`datagen`]: reproducible synthetic data for benchmarks.
//! - [`healthcheck`]: the `tagd healthcheck` probe for container runtimes.
//! - [`metrics`], [`logging`]: what is counted for Prometheus, and how logs are written.
//!
//! Dependencies point one way: `api -> core <- store`, with `auth` (over `core`) used by
//! `api`; [`server`] and [`cli`] wire a backend in. `tests/architecture.rs` keeps it so.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod core;
pub mod datagen;
pub mod healthcheck;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod store;
pub mod tls;
