//! The admin CLI and `tagd config`, run as the real binary on throwaway data
//! directories: outputs parsed as tables and as JSON, the export/import round trips,
//! refused import lines, configuration redaction and the generated reference.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// Runs `tagd ARGS` with no TAGD_* variable but those in `env`.
fn tagd(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagd"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TAGD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("TAGD_LOG", "warn")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tagd");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("tagd")
}

/// A data directory with a domain `tagd` and a project `p1`.
struct Store {
    dir: tempfile::TempDir,
    project_id: String,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store {
            dir,
            project_id: String::new(),
        };
        s.ok(&["domain", "create", "tagd"]);
        let out = s.ok(&["project", "create", "p1"]);
        let project_id = out.split('\t').next().expect("id").to_owned();
        Store { project_id, ..s }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tagd admin --data-dir DIR ARGS`.
    fn admin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let dir = self.dir.path().to_str().expect("utf-8 path");
        let mut all = vec!["admin", "--data-dir", dir];
        all.extend_from_slice(args);
        tagd(&all, &[], stdin)
    }

    /// Runs an admin command that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.admin(args, None);
        assert!(
            out.status.success(),
            "tagd admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

/// Parses an aligned table: each column starts where its header does, on every line.
fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header = lines.next().expect("a header line");
    let mut starts = Vec::new();
    let mut prev = ' ';
    for (i, c) in header.char_indices() {
        if c != ' ' && prev == ' ' {
            starts.push(i);
        }
        prev = c;
    }
    let names: Vec<String> = header.split_whitespace().map(str::to_lowercase).collect();
    assert_eq!(names.len(), starts.len(), "{header}");
    assert!(
        header.chars().all(|c| !c.is_lowercase()),
        "headers are upper case: {header}"
    );
    lines
        .map(|line| {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let from = starts[i].min(line.len());
                    let to = starts
                        .get(i + 1)
                        .copied()
                        .unwrap_or(line.len())
                        .min(line.len());
                    if i > 0 && from > 0 {
                        assert_eq!(
                            &line[from - 1..from],
                            " ",
                            "column {name} is not aligned in {line:?}"
                        );
                    }
                    (name.clone(), line[from..to].trim().to_owned())
                })
                .collect()
        })
        .collect()
}

#[test]
fn listings_print_aligned_tables_and_json() {
    let s = Store::new();
    s.ok(&["project", "create", "a-longer-project-name"]);
    let out = s.admin(
        &["user", "create", "--admin", "alice"],
        Some("a-long-password\n"),
    );
    assert!(out.status.success());
    let user_id = String::from_utf8_lossy(&out.stdout)
        .split('\t')
        .next()
        .expect("user create prints ID<TAB>NAME")
        .to_owned();
    assert_eq!(user_id.len(), 32);

    let projects = parse_table(&s.ok(&["project", "list"]));
    assert_eq!(projects.len(), 2);
    assert!(projects
        .iter()
        .any(|p| p["name"] == "a-longer-project-name" && p["id"].len() == 32));
    let json = s.json(&["project", "list"]);
    assert_eq!(json.as_array().expect("array").len(), 2);
    assert!(json
        .as_array()
        .expect("array")
        .iter()
        .any(|p| p["name"] == "p1" && p["id"] == s.project_id.as_str()));

    let users = parse_table(&s.ok(&["user", "list"]));
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["admin"], "true");
    assert_eq!(s.json(&["user", "list"])[0]["admin"], true);

    // --output is accepted before the subcommand too.
    let out = s.ok(&["--output", "json", "domain", "list"]);
    let domains: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(domains[0]["name"], "tagd");

    let created = s.json(&["credential", "create", "--user", "alice"]);
    let access = created["access_key"].as_str().expect("access_key");
    assert!(created["secret_key"]
        .as_str()
        .is_some_and(|k| k.len() >= 20));
    let keys = parse_table(&s.ok(&["credential", "list", "--user", "alice"]));
    assert_eq!(keys[0]["access_key"], access);
    assert_eq!(keys[0]["status"], "active");
    let listed = s.json(&["credential", "list", "--user", "alice"]);
    assert_eq!(listed[0]["access_key"], access);
    assert!(
        listed[0].get("secret_key").is_none(),
        "a listing never shows a secret"
    );
    // The lines scripts parse (tests/sdk/conftest.py) keep their shape.
    let text = s.ok(&["credential", "create", "--user", "alice"]);
    assert!(
        text.lines().any(|l| l.starts_with("access_key = "))
            && text.lines().any(|l| l.starts_with("secret_key = ")),
        "{text}"
    );

    let empty = s.ok(&["resource", "list"]);
    assert_eq!(
        empty.lines().collect::<Vec<_>>(),
        ["PROJECT_ID  RESOURCE_TYPE  RESOURCE_ID  NAME"],
        "an empty listing still has its header"
    );
    assert_eq!(s.json(&["resource", "list"]), json!([]));
}

#[test]
fn resource_export_and_import_round_trip_in_csv_and_json() {
    let s = Store::new();
    let pid = s.project_id.clone();
    let csv = s.path("in.csv");
    std::fs::write(
        &csv,
        format!(
            "project_id,resource_type,resource_id,name\n{pid},disk,d1,first disk\n{pid},disk,d2,\n{pid},ecs,vm-1,\"web, front\"\n,cdn,cdn.example.com,site\n"
        ),
    )
    .expect("csv");
    let report = s.json(&["resource", "import", csv.to_str().expect("path")]);
    assert_eq!(report, json!({"read": 4, "registered": 4}));
    let before = s.json(&["resource", "list"]);
    assert_eq!(before.as_array().expect("array").len(), 4);

    for format in ["csv", "json"] {
        let file = s.path(&format!("out.{format}"));
        s.ok(&[
            "resource",
            "export",
            "--format",
            format,
            file.to_str().expect("path"),
        ]);
        // Standard output carries the same export.
        let stdout = s.ok(&["resource", "export", "--format", format]);
        assert_eq!(std::fs::read_to_string(&file).expect("export"), stdout);
        if format == "csv" {
            assert!(stdout.starts_with("project_id,resource_type,resource_id,name\n"));
        } else {
            let parsed: Value = serde_json::from_str(&stdout).expect("a JSON array");
            assert_eq!(parsed.as_array().expect("array").len(), 4);
        }
        for r in before.as_array().expect("array") {
            let mut args = vec![
                "resource",
                "remove",
                "--type",
                r["resource_type"].as_str().expect("type"),
                "--id",
                r["resource_id"].as_str().expect("id"),
            ];
            if r["project_id"] != "" {
                args.extend(["--project", r["project_id"].as_str().expect("project")]);
            }
            s.ok(&args);
        }
        assert_eq!(s.json(&["resource", "list"]), json!([]));
        let report = s.json(&["resource", "import", file.to_str().expect("path")]);
        assert_eq!(report["registered"], 4, "{format}");
        assert_eq!(s.json(&["resource", "list"]), before, "{format}");
    }

    // Filters narrow the export; an empty one still imports (as nothing).
    let disks = s.ok(&["resource", "export", "--project", "p1", "--type", "disk"]);
    assert_eq!(disks.lines().count(), 1 + 2, "{disks}");
    let none = s.ok(&["resource", "export", "--type", "vpcs"]);
    assert_eq!(none, "project_id,resource_type,resource_id,name\n");
    let report = s.admin(&["resource", "import", "--format", "csv", "-"], Some(&none));
    assert!(report.status.success());
}

/// Lines with tags that different APIs' rules admit: a Workspace desktop key longer
/// than TMS allows, a Fabric value with spaces, a DIS stream, untagged resources.
fn sample_lines() -> Vec<Value> {
    vec![
        json!({"resource_type": "disk", "resource_id": "d1", "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}]}),
        json!({"resource_type": "disk", "resource_id": "d2", "tags": []}),
        json!({"resource_type": "dis", "resource_id": "s1", "tags": [{"key": "流", "value": "v_1"}]}),
        json!({"resource_type": "fabric-workspace", "resource_id": "w1", "tags": [{"key": "owner", "value": "a b:c@d"}]}),
        json!({"resource_type": "workspace-desktop", "resource_id": "desk-1", "tags": [{"key": "k".repeat(100), "value": ""}]}),
    ]
}

fn lines_of(text: &str) -> Vec<Value> {
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    lines.sort_by_key(|l| (l["resource_type"].to_string(), l["resource_id"].to_string()));
    lines
}

fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn tags_export_and_import_round_trip_into_a_fresh_store() {
    let a = Store::new();
    let file = a.path("tags.jsonl");
    std::fs::write(&file, jsonl(&sample_lines())).expect("write");
    let report = a.json(&[
        "tags",
        "import",
        "--project",
        "p1",
        "--register",
        file.to_str().expect("path"),
    ]);
    assert_eq!(report, json!({"read": 5, "applied": 5, "refused": []}));
    let exported = a.ok(&["tags", "export", "--project", "p1"]);
    let mut expected = sample_lines();
    expected.sort_by_key(|l| (l["resource_type"].to_string(), l["resource_id"].to_string()));
    assert_eq!(lines_of(&exported), expected);

    // Another store, and another project name: lines carry no project.
    let b = Store::new();
    b.ok(&["project", "create", "elsewhere"]);
    let out_file = a.path("export.jsonl");
    a.ok(&[
        "tags",
        "export",
        "--project",
        &a.project_id,
        out_file.to_str().expect("path"),
    ]);
    let out = b.admin(
        &["tags", "import", "--project", "elsewhere", "-"],
        Some(&exported),
    );
    assert!(
        !out.status.success(),
        "resources not registered in b are refused without --register"
    );
    let report = b.json(&[
        "tags",
        "import",
        "--project",
        "elsewhere",
        "--register",
        out_file.to_str().expect("path"),
    ]);
    assert_eq!(report["applied"], 5);
    assert_eq!(
        lines_of(&b.ok(&["tags", "export", "--project", "elsewhere"])),
        lines_of(&exported)
    );
    assert_eq!(b.ok(&["tags", "export", "--project", "p1"]), "");
    // The registered resources are in b's inventory, in that project.
    let listed = b.json(&["resource", "list", "--project", "elsewhere"]);
    assert_eq!(listed.as_array().expect("array").len(), 5);

    // Importing again changes nothing.
    b.ok(&[
        "tags",
        "import",
        "--project",
        "elsewhere",
        out_file.to_str().expect("path"),
    ]);
    assert_eq!(
        lines_of(&b.ok(&["tags", "export", "--project", "elsewhere"])),
        lines_of(&exported)
    );
}

#[test]
fn tags_import_reports_refused_lines_by_number_and_exits_non_zero() {
    let s = Store::new();
    let pid = s.project_id.clone();
    for id in ["d1", "full"] {
        s.ok(&[
            "resource",
            "add",
            "--project",
            &pid,
            "--type",
            "disk",
            "--id",
            id,
        ]);
    }
    let twenty: Vec<Value> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    let lines = [
        // 1: fills "full" to the disk limit of 20.
        json!({"resource_type": "disk", "resource_id": "full", "tags": twenty}).to_string(),
        // 2: one more key on a full resource.
        json!({"resource_type": "disk", "resource_id": "full", "tags": [{"key": "extra", "value": ""}]}).to_string(),
        // 3: overwriting a key there is fine.
        json!({"resource_type": "disk", "resource_id": "full", "tags": [{"key": "k0", "value": "new"}]}).to_string(),
        // 4: a character no API admits for keys.
        json!({"resource_type": "disk", "resource_id": "d1", "tags": [{"key": "a=b", "value": "x"}]}).to_string(),
        String::new(),
        // 6: a key twice.
        json!({"resource_type": "disk", "resource_id": "d1", "tags": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}).to_string(),
        // 7: not JSON.
        "{not json".to_owned(),
        // 8: an unknown type.
        json!({"resource_type": "tape", "resource_id": "t1", "tags": []}).to_string(),
        // 9: not registered.
        json!({"resource_type": "disk", "resource_id": "ghost", "tags": [{"key": "a", "value": ""}]}).to_string(),
        // 10: fine.
        json!({"resource_type": "disk", "resource_id": "d1", "tags": [{"key": "env", "value": "prod"}]}).to_string(),
    ];
    let file = s.path("tags.jsonl");
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = s.admin(
        &[
            "tags",
            "import",
            "--project",
            "p1",
            file.to_str().expect("path"),
        ],
        None,
    );
    assert!(
        !out.status.success(),
        "refused lines make the exit status non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("9 lines read, 3 applied, 6 refused"),
        "{stdout}"
    );
    let refused: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    let numbers: Vec<&str> = refused
        .iter()
        .map(|l| l.split(':').next().expect("number"))
        .collect();
    assert_eq!(
        numbers,
        ["line 2", "line 4", "line 6", "line 7", "line 8", "line 9"],
        "{stderr}"
    );
    assert!(refused[0].contains("at most 20"), "{}", refused[0]);
    assert!(refused[1].contains("'='"), "{}", refused[1]);
    assert!(refused[2].contains("more than once"), "{}", refused[2]);
    assert!(refused[5].contains("--register"), "{}", refused[5]);
    assert!(stderr.contains("6 of 9 lines were refused"), "{stderr}");

    let exported = lines_of(&s.ok(&["tags", "export", "--project", "p1"]));
    let full = exported
        .iter()
        .find(|l| l["resource_id"] == "full")
        .expect("full");
    let tags = full["tags"].as_array().expect("tags");
    assert_eq!(tags.len(), 20);
    assert!(tags.contains(&json!({"key": "k0", "value": "new"})));
    let d1 = exported
        .iter()
        .find(|l| l["resource_id"] == "d1")
        .expect("d1");
    assert_eq!(d1["tags"], json!([{"key": "env", "value": "prod"}]));

    // JSON output lists the refused lines too.
    let out = s.admin(
        &[
            "tags",
            "import",
            "--project",
            "p1",
            "--output",
            "json",
            file.to_str().expect("path"),
        ],
        None,
    );
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["refused"].as_array().expect("refused").len(), 6);
    assert_eq!(report["refused"][0]["line"], 2);
}

#[test]
fn predefined_tags_follow_the_tms_rules_and_quota() {
    let s = Store::new();
    s.ok(&["predefined-tag", "add", "env=prod", "env=dev", "team="]);
    let listed = parse_table(&s.ok(&["predefined-tag", "list"]));
    let pairs: Vec<(&str, &str)> = listed
        .iter()
        .map(|r| (r["key"].as_str(), r["value"].as_str()))
        .collect();
    assert_eq!(pairs, [("env", "dev"), ("env", "prod"), ("team", "")]);
    let json = s.json(&["predefined-tag", "list", "--key", "EN"]);
    assert_eq!(json.as_array().expect("array").len(), 2);
    assert!(json[0]["updated_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let removed = s.json(&["predefined-tag", "remove", "env=dev", "nope=x"]);
    assert_eq!(removed, json!({"removed": 1, "absent": 1}));

    let out = s.admin(&["predefined-tag", "add", "a b=c"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("' '"));
    let out = s.admin(&["predefined-tag", "add", "novalue"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));

    // The quota: 500 per domain.
    let many: Vec<String> = (0..498).map(|i| format!("bulk={i}")).collect();
    let mut args = vec!["predefined-tag", "add"];
    args.extend(many.iter().map(String::as_str));
    s.ok(&args);
    assert_eq!(
        s.json(&["predefined-tag", "list"])
            .as_array()
            .expect("a")
            .len(),
        500
    );
    let out = s.admin(&["predefined-tag", "add", "one=more"], None);
    assert!(!out.status.success(), "the 501st is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("predefined-tag remove"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn errors_say_what_is_wrong_and_how_to_fix_it() {
    let s = Store::new();
    for (args, hint) in [
        (
            &["tags", "export", "--project", "nope"][..],
            "tagd admin project list",
        ),
        (
            &["resource", "list", "--domain", "nope"][..],
            "tagd admin domain list",
        ),
        (
            &["credential", "list", "--user", "nobody"][..],
            "tagd admin user list",
        ),
        (
            &["tags", "import", "--project", "p1", "/no/such/file"][..],
            "cannot read /no/such/file",
        ),
    ] {
        let out = s.admin(args, None);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(hint), "{args:?}: {stderr}");
    }
    s.ok(&["domain", "create", "second"]);
    let out = s.admin(&["project", "list"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--domain"));
}

const SERVER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn config_show(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["config", "show"];
    all.extend_from_slice(args);
    let out = tagd(&all, env, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn config_show_redacts_secrets_and_is_read_back_by_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shown = config_show(
        &[
            "--database-url",
            "postgres://user:secret@host/db",
            "--max-headers",
            "64",
        ],
        &[
            ("TAGD_SERVER_KEY", SERVER_KEY),
            ("TAGD_LISTEN", "127.0.0.1:9999"),
        ],
    );
    assert!(!shown.contains("secret@"), "{shown}");
    assert!(!shown.contains(SERVER_KEY), "{shown}");
    assert!(
        shown.contains("database_url = \"postgres://user:***@host/db\""),
        "{shown}"
    );
    assert!(shown.contains("\nmax_headers = 64\n"), "flags: {shown}");
    assert!(
        shown.contains("\nlisten = \"127.0.0.1:9999\"\n"),
        "environment: {shown}"
    );

    // Its output is a file --config accepts, resolving to the same values.
    let file = dir.path().join("shown.toml");
    std::fs::write(&file, &shown).expect("write");
    let again = config_show(&["--config", file.to_str().expect("path")], &[]);
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split("  #").next().expect("value").to_owned())
            .collect()
    };
    assert_eq!(values(&again), values(&shown));

    // Flags win over the environment, the environment over the file.
    std::fs::write(
        &file,
        "max_headers = 50\nlisten = \"127.0.0.1:7000\"\nmax_connections = 10\n",
    )
    .expect("write");
    let resolved = config_show(
        &[
            "--config",
            file.to_str().expect("path"),
            "--max-headers",
            "60",
        ],
        &[
            ("TAGD_LISTEN", "127.0.0.1:7001"),
            ("TAGD_MAX_HEADERS", "70"),
        ],
    );
    assert!(resolved.contains("\nmax_headers = 60\n"), "{resolved}");
    assert!(
        resolved.contains("\nlisten = \"127.0.0.1:7001\"\n"),
        "{resolved}"
    );
    assert!(resolved.contains("\nmax_connections = 10\n"), "{resolved}");

    // A bad file is refused with its line, and the exit status says so.
    std::fs::write(&file, "listen = \"127.0.0.1:7000\"\nlisen = 1\n").expect("write");
    let out = tagd(
        &["config", "show", "--config", file.to_str().expect("path")],
        &[],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("lisen"),
        "{stderr}"
    );
}

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

#[test]
fn the_configuration_reference_is_generated_from_the_code() {
    let out = tagd(&["config", "reference"], &[], None);
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let committed = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/configuration.md differs from `tagd config reference`; regenerate it with\n  \
         cargo run -- config reference > docs/configuration.md"
    );
}

#[test]
fn every_option_appears_in_the_reference_config_show_and_the_example() {
    let reference = tagd::cli::reference();
    let shown = config_show(&[], &[]);
    let example = std::fs::read_to_string(repo_file("tagd.example.toml")).expect("example");
    let options = tagd::cli::options();
    assert!(options.len() >= 20, "only {} options found", options.len());
    for o in &options {
        assert!(
            reference.contains(&format!("| `--{}` |", o.long)),
            "--{} missing from the reference",
            o.long
        );
        let Some(key) = o.toml_key() else { continue };
        for (name, text) in [("config show", &shown), ("tagd.example.toml", &example)] {
            let set = text.lines().any(|l| l.starts_with(&format!("{key} = ")));
            let commented = text.lines().any(|l| l.starts_with(&format!("# {key} = ")));
            assert!(
                set || commented,
                "{key} is missing from {name} (config show: src/cli/config.rs)"
            );
        }
    }
}

#[test]
fn the_example_configuration_is_accepted_and_holds_the_defaults() {
    let example = repo_file("tagd.example.toml");
    let from_example = config_show(&["--config", example.to_str().expect("path")], &[]);
    let defaults = config_show(&[], &[]);
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        values(&from_example),
        values(&defaults),
        "tagd.example.toml should set every key to its default"
    );
}
