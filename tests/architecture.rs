//! The dependency rule of the crate docs, checked on the source: `api -> core <- store`,
//! with the server (and the CLI) wiring them together. `core` owns the storage port
//! (`core::port`), so neither it, nor the API adapters, nor authentication name the
//! backends; the backends name no adapter. A new import that breaks the rule fails here.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// Every `(file, line)` under `src/<layer>` (a folder, or `<layer>.rs`) that names one
/// of `forbidden`, comments included: a doc link is a dependency too.
fn offenders(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let dir = src.join(layer);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    let file = src.join(format!("{layer}.rs"));
    if file.is_file() {
        files.push(file);
    }
    assert!(!files.is_empty(), "no source for layer {layer}");
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn core_api_and_auth_never_name_the_backends() {
    for layer in ["core", "api", "auth"] {
        let found = offenders(layer, &["crate::store", "tagd::store"]);
        assert!(
            found.is_empty(),
            "{layer} depends on store:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_backends_and_core_never_name_the_adapters() {
    for layer in ["core", "store"] {
        let found = offenders(
            layer,
            &["crate::api", "crate::auth", "crate::server", "crate::cli"],
        );
        assert!(
            found.is_empty(),
            "{layer} depends on an outer layer:\n{}",
            found.join("\n")
        );
    }
}
