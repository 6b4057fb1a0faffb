//! The tag index against SQL: the same queries, on the same data, must agree.

use super::*;
use crate::core::model::new_id;
use crate::core::query::TagMatch;
use crate::core::tagging::{BatchItem, BatchMode, BatchTarget, TagChange};
use crate::core::tags::{TagKey, TagValue};
use crate::datagen::{tags_of, Lcg};

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: TagKey::from_stored(k.to_owned()),
        value: TagValue::from_stored(v.to_owned()),
    }
}

/// The indexer applies a group's changes only onto the write sequence they follow:
/// older ones (already in a rebuilt index) are skipped, and a gap drops the index
/// and asks for a rebuild rather than leaving it silently wrong.
#[test]
fn index_updates_apply_in_sequence_or_drop_the_index() {
    let shared = SharedIndex::default();
    *shared.index.write().expect("lock") = Some(TagIndex::new(5));
    let seq = |shared: &SharedIndex| shared.index.read().expect("lock").as_ref().map(|i| i.seq);
    let set = |rid: i64| IndexUpdate {
        from: 0,
        to: 0,
        deltas: vec![Delta::TagSet {
            rid: Rid::new(rid).expect("a small id"),
            key: "env".into(),
            old: None,
            new: "prod".into(),
        }],
        spent: Vec::new(),
    };

    apply_update(
        &shared,
        &IndexUpdate {
            from: 5,
            to: 6,
            ..set(1)
        },
    );
    assert_eq!(seq(&shared), Some(6), "the next group is applied");
    apply_update(
        &shared,
        &IndexUpdate {
            from: 4,
            to: 5,
            ..set(2)
        },
    );
    assert_eq!(seq(&shared), Some(6), "an older group is skipped");
    assert!(!shared.wanted.load(Ordering::Acquire));
    apply_update(
        &shared,
        &IndexUpdate {
            from: 7,
            to: 8,
            ..set(3)
        },
    );
    assert_eq!(seq(&shared), None, "a gap drops the index");
    assert!(
        shared.wanted.load(Ordering::Acquire),
        "and asks for a rebuild"
    );

    *shared.index.write().expect("lock") = Some(TagIndex::new(8));
    apply_update(
        &shared,
        &IndexUpdate {
            from: 8,
            to: 9,
            deltas: vec![Delta::Invalidate],
            spent: Vec::new(),
        },
    );
    assert_eq!(seq(&shared), None, "a change it cannot follow drops it too");
}

/// A row id beyond the index's 32 bits (copied from PostgreSQL, say) must not be
/// cut down to another resource's: before D83 the resource at 2^32 + 1 was taken
/// for rid 1, another domain's, and a query of its own domain listed that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_id_beyond_the_index_never_aliases_another_resource() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let mut places = Vec::new();
    for name in ["victim", "other"] {
        let domain = Domain {
            id: new_id(),
            name: name.into(),
            enabled: true,
        };
        store.insert_domain(&domain).await.expect("domain");
        places.push(ResourceRef {
            domain_id: domain.id,
            project_id: String::new(),
            resource_type: "disk".into(),
            resource_id: format!("{name}-disk"),
        });
    }
    let tag_it = |at: &ResourceRef, value: &str| TagBatch {
        items: vec![BatchItem {
            target: BatchTarget {
                at: at.clone(),
                tag_limit: 20,
            },
            change: TagChange::Set(vec![tag("env", value)]),
            sys_change: None,
        }],
        mode: BatchMode::PerResource,
        auto_register: true,
    };
    store
        .apply_tags(tag_it(&places[0], "secret"))
        .await
        .expect("tag");
    let victim_rid: i64 = store
        .readers
        .run(|c| c.query_row("SELECT max(rid) FROM resources", [], |r| r.get(0)))
        .expect("rid");
    // The other domain's resource takes a row id that is the victim's plus 2^32, as
    // a copy from PostgreSQL would keep it.
    let big = victim_rid + (1_i64 << 32);
    let other = places[1].clone();
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO resources (rid, domain_id, project_id, resource_type, resource_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![big, other.domain_id, other.project_id, other.resource_type, other.resource_id],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
        .expect("insert a resource with a large row id");
    store
        .apply_tags(tag_it(&places[1], "mine"))
        .await
        .expect("tag");

    // Each domain sees its own resource, whether the index answers or SQL does.
    for _ in 0..3 {
        for (at, value) in places.iter().zip(["secret", "mine"]) {
            let query = ResourceQuery {
                domain_id: at.domain_id.clone(),
                projects: vec![String::new()],
                ..ResourceQuery::default()
            };
            let page = store.find_resources(&query, 0, 10).await.expect("find");
            let found: Vec<(&str, &str)> = page
                .resources
                .iter()
                .flat_map(|f| {
                    f.tags
                        .iter()
                        .map(|t| (f.resource.at.resource_id.as_str(), t.value.as_str()))
                })
                .collect();
            assert_eq!(found, [(at.resource_id.as_str(), value)]);
            assert_eq!(page.total_count, 1);
            assert_eq!(store.count_resources(&query).await.expect("count"), 1);
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert!(
        index_seq(&store).is_none(),
        "the index cannot hold this store, so it is not built"
    );
}

/// Waits until the index is built and has applied every committed write (the
/// indexer thread applies them just after their commit).
async fn wait_for_index(store: &SqliteStore) {
    for _ in 0..200 {
        let q = ResourceQuery::default();
        let _ = store.count_resources(&q).await;
        let committed = store.readers.run(write_seq).expect("write_seq");
        if index_seq(store) == Some(committed) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the index never caught up with the database");
}

/// Waits until the indexer has applied every committed write, without asking for
/// anything that could rebuild the index: it must have followed them.
async fn wait_for_updates(store: &SqliteStore) {
    for _ in 0..200 {
        let committed = store.readers.run(write_seq).expect("write_seq");
        match index_seq(store) {
            Some(seq) if seq == committed => return,
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            None => panic!("the index was dropped instead of following the writes"),
        }
    }
    panic!("the indexer never caught up with the database");
}

fn sql_page(store: &SqliteStore, q: &ResourceQuery, offset: u64, limit: u64) -> FoundPage {
    let conn = store.readers.take().expect("connection");
    let tx = conn.unchecked_transaction().expect("tx");
    find_by_sql(&tx, q, offset, limit).expect("sql")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_answers_exactly_what_sql_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    let domain = Domain {
        id: new_id(),
        name: "d".into(),
        enabled: true,
    };
    store.insert_domain(&domain).await.expect("domain");
    let projects: Vec<Project> = (0..2)
        .map(|i| Project {
            id: new_id(),
            domain_id: domain.id.clone(),
            name: format!("p{i}"),
            enabled: true,
        })
        .collect();
    for p in &projects {
        store.insert_project(p).await.expect("project");
    }
    let mut rng = Lcg::new(9);
    let at = |i: usize| ResourceRef {
        domain_id: domain.id.clone(),
        project_id: projects[i % 2].id.clone(),
        resource_type: if i % 3 == 0 {
            "rds".into()
        } else {
            "disk".into()
        },
        resource_id: format!("r{:03}", (i * 7919) % 400),
    };
    let resources: Vec<Resource> = (0..400)
        .map(|i| Resource {
            at: at(i),
            name: String::new(),
        })
        .collect();
    store
        .register_resources(&resources)
        .await
        .expect("register");
    // Query once so that the index is wanted, and let it build.
    wait_for_index(&store).await;
    // Resources registered after the build slot in between the others' sort labels
    // (ids ending in `x` sort right after an existing id), several into one gap.
    let later: Vec<Resource> = (0..120)
        .map(|i| Resource {
            at: ResourceRef {
                resource_id: format!("{}{}", at(i % 40).resource_id, "x".repeat(1 + i / 40)),
                ..at(i % 40)
            },
            name: String::new(),
        })
        .collect();
    store
        .register_resources(&later)
        .await
        .expect("register later");
    // Writes after the build: sets, overwrites, removals, some untagged resources.
    for round in 0..3 {
        let items: Vec<BatchItem> = (0..400)
            .filter(|i| (i + round) % 5 != 0)
            .map(|i| BatchItem {
                target: BatchTarget {
                    at: at(i),
                    tag_limit: 20,
                },
                change: if round == 2 && i % 7 == 0 {
                    TagChange::Remove(vec![crate::core::tags::TagSelector {
                        key: TagKey::from_stored("env".into()),
                        value: None,
                    }])
                } else {
                    TagChange::Set(
                        tags_of(&mut rng)
                            .iter()
                            .take(2 + round)
                            .map(|(k, v)| tag(k, v))
                            .collect(),
                    )
                },
                sys_change: None,
            })
            .collect();
        store
            .apply_tags(TagBatch {
                items,
                mode: BatchMode::PerResource,
                auto_register: false,
            })
            .await
            .expect("apply");
    }
    wait_for_index(&store).await;
    let project_ids: Vec<String> = projects.iter().map(|p| p.id.clone()).collect();
    assert_index_matches_sql(&store, &domain.id, &project_ids).await;

    // Removing resources (with their tags) keeps the index current: no rebuild, and
    // the same answers as SQL.
    let seq = index_seq(&store).expect("the index is built");
    store
        .remove_resources(&[at(1), at(2), at(3)])
        .await
        .expect("remove");
    wait_for_updates(&store).await;
    let after_removal = index_seq(&store).expect("the index is kept through removals");
    assert!(after_removal > seq);
    assert_index_matches_sql(&store, &domain.id, &project_ids).await;

    // SQLite reuses the row id of the last row once it is deleted: the index must
    // take a resource registered again under that row id as a new one.
    let (last_rid, last): (i64, ResourceRef) = store
        .readers
        .run(|c| {
            c.query_row(
                "SELECT rid, domain_id, project_id, resource_type, resource_id
                 FROM resources ORDER BY rid DESC LIMIT 1",
                [],
                |r| {
                    let at = ResourceRef {
                        domain_id: r.get(1)?,
                        project_id: r.get(2)?,
                        resource_type: r.get(3)?,
                        resource_id: r.get(4)?,
                    };
                    Ok((r.get(0)?, at))
                },
            )
        })
        .expect("the last resource");
    store
        .remove_resources(std::slice::from_ref(&last))
        .await
        .expect("remove the last");
    let reborn = ResourceRef {
        resource_type: "rds".into(),
        resource_id: "a-new-one".into(),
        ..last
    };
    store
        .apply_tags(TagBatch {
            items: vec![BatchItem {
                target: BatchTarget {
                    at: reborn.clone(),
                    tag_limit: 20,
                },
                change: TagChange::Set(vec![tag("env", "prod"), tag("reborn", "yes")]),
                sys_change: None,
            }],
            mode: BatchMode::PerResource,
            auto_register: true,
        })
        .await
        .expect("register again");
    assert_eq!(
        store.readers.run(|c| find_rid(c, &reborn)).expect("rid"),
        Some(last_rid),
        "the row id was reused"
    );
    wait_for_updates(&store).await;
    assert_index_matches_sql(&store, &domain.id, &project_ids).await;
}

fn index_seq(store: &SqliteStore) -> Option<u64> {
    store
        .index
        .index
        .read()
        .expect("lock")
        .as_ref()
        .map(|i| i.seq)
}

/// Filters, counts and key and value listings through the store (the index, which
/// must be current) against plain SQL on the same data.
async fn assert_index_matches_sql(store: &SqliteStore, domain_id: &str, project_ids: &[String]) {
    assert!(index_seq(store).is_some(), "the index is in use");
    let envs = ["prod", "dev", "test", "staging"];
    let mut checked = 0;
    for n in 0..60u32 {
        let m = |key: &str, values: &[&str]| TagMatch {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let env = envs[(n % 4) as usize];
        let mut q = ResourceQuery {
            domain_id: domain_id.to_owned(),
            projects: if n % 3 == 0 {
                project_ids.to_vec()
            } else {
                vec![project_ids[(n % 2) as usize].clone()]
            },
            resource_types: if n % 4 == 0 {
                vec![]
            } else {
                vec!["disk".into()]
            },
            ..ResourceQuery::default()
        };
        match n % 6 {
            0 => q.all = vec![m("env", &[env])],
            1 => q.all = vec![m("env", &[env, "dev"]), m("team", &[])],
            2 => q.any = vec![m("env", &[env]), m("owner", &["u1", "u2", "u3"])],
            3 => q.not_all = vec![m("env", &[]), m("team", &["t1", "t2"])],
            4 => q.none = vec![m("env", &[env])],
            _ => q.without_any_tag = true,
        }
        // The index itself, not a fallback to SQL, must give this answer.
        let via_index = {
            let guard = store.index.index.read().expect("lock");
            let ix = guard.as_ref().expect("the index is in use");
            let rids = ix.evaluate(&q);
            (ix.page(&rids, (n % 3) as u64 * 7, 25), rids.len())
        };
        let via_index = {
            let conn = store.readers.take().expect("connection");
            found_by_rids(&conn, &via_index.0, via_index.1).expect("rows")
        };
        let seq_before = index_seq(store);
        let via_store = store
            .find_resources(&q, (n % 3) as u64 * 7, 25)
            .await
            .expect("find");
        let count = store.count_resources(&q).await.expect("count");
        let via_sql = sql_page(store, &q, (n % 3) as u64 * 7, 25);
        assert!(seq_before.is_some(), "the index is in use");
        assert_eq!(via_store, via_sql, "query {n}: {q:?}");
        assert_eq!(via_index, via_sql, "query {n} on the index: {q:?}");
        assert_eq!(count, via_sql.total_count, "count {n}");
        checked += 1;
    }
    assert_eq!(checked, 60);
    // Key and value listings too.
    let scope = TagScope {
        domain_id: domain_id.to_owned(),
        projects: project_ids.to_vec(),
        resource_types: vec![],
    };
    let keys = store.tag_keys(&scope, None, 1000).await.expect("keys");
    let conn = store.readers.take().expect("connection");
    let mut sql = SqlBuilder::new(Dialect::Sqlite);
    let filter = sql.scope_where(&scope);
    let sql_keys: Vec<String> = conn
        .prepare(&format!("SELECT DISTINCT t.key FROM tags t JOIN resources r ON r.rid = t.rid WHERE {filter} ORDER BY t.key"))
        .expect("prepare")
        .query_map(rusqlite::params_from_iter(sql.params()), |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(keys, sql_keys);
    let values = store
        .tag_values(&scope, "owner", Some("u3"), 5)
        .await
        .expect("values");
    assert!(values.windows(2).all(|w| w[0] < w[1]) && values.iter().all(|v| v.as_str() > "u3"));
    for key in &sql_keys {
        let guard = store.index.index.read().expect("lock");
        let ix = guard.as_ref().expect("the index is in use");
        let everywhere = ix.scope(domain_id, project_ids, &[]);
        let mut sql = SqlBuilder::new(Dialect::Sqlite);
        let filter = sql.scope_where(&scope);
        let key_param = sql.equals("t.key", key);
        let sql_values: Vec<String> = conn
            .prepare(&format!("SELECT DISTINCT t.value FROM tags t JOIN resources r ON r.rid = t.rid WHERE {filter} AND {key_param} ORDER BY t.value"))
            .expect("prepare")
            .query_map(rusqlite::params_from_iter(sql.params()), |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(
            ix.values(domain_id, &everywhere, key, None, 100_000),
            sql_values,
            "values of {key}"
        );
        let listed = ix.key_values(domain_id, &everywhere);
        assert_eq!(
            listed.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Some(&sql_values),
            "key_values of {key}"
        );
    }
}
