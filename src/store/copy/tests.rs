use super::*;

fn sqlite_catalog() -> Catalog {
    let conn = Connection::open_in_memory().expect("in-memory SQLite");
    for sql in sqlite::MIGRATIONS {
        conn.execute_batch(sql).expect("SQLite migration applies");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut end = SqliteEnd::new(SharedSqlite(Arc::new(Mutex::new(conn))));
    runtime.block_on(end.catalog()).expect("catalog")
}

#[test]
fn the_table_list_matches_the_migrations() {
    check_catalog("sqlite", &sqlite_catalog(), sqlite_type).expect("TABLES is complete");
}

#[test]
fn a_column_the_list_lacks_stops_the_copy() {
    let mut catalog = sqlite_catalog();
    catalog
        .get_mut("tags")
        .expect("tags")
        .push(("colour".into(), "TEXT".into()));
    let error = check_catalog("target x", &catalog, sqlite_type).expect_err("refused");
    assert!(error.to_string().contains("colour TEXT"), "{error}");

    let mut catalog = sqlite_catalog();
    catalog.insert("labels".into(), vec![]);
    let error = check_catalog("target x", &catalog, sqlite_type).expect_err("refused");
    assert!(error.to_string().contains("labels"), "{error}");
}

#[test]
fn the_summary_lists_every_table() {
    let summary = Summary {
        from: "sqlite://a".into(),
        to: "postgres://h:5432/d".into(),
        tables: vec![("domains", 1), ("tags", 20_000)],
        elapsed: Duration::from_millis(1500),
    };
    let text = summary.to_string();
    assert!(text.contains("tags                    20000"), "{text}");
    assert!(text.contains("total                   20001"), "{text}");
}
