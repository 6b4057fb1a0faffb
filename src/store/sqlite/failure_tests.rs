//! Damage found while serving stops the store (D80): the start's check (D81) cannot
//! see what breaks after it.

use super::*;
use crate::core::model::new_id;
use crate::core::tagging::{BatchItem, BatchMode, BatchTarget, TagChange};
use crate::core::tags::{TagKey, TagValue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_found_damaged_while_serving_stops_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let domain = Domain {
        id: new_id(),
        name: "d".into(),
        enabled: true,
    };
    store.insert_domain(&domain).await.expect("domain");
    let at = |n: usize| ResourceRef {
        domain_id: domain.id.clone(),
        project_id: String::new(),
        resource_type: "disk".into(),
        resource_id: format!("disk-{n}"),
    };
    let batch = |n: usize| TagBatch {
        items: vec![BatchItem {
            target: BatchTarget {
                at: at(n),
                tag_limit: 20,
            },
            change: TagChange::Set(vec![Tag {
                key: TagKey::from_stored("env".into()),
                value: TagValue::from_stored("prod".into()),
            }]),
            sys_change: None,
        }],
        mode: BatchMode::PerResource,
        auto_register: true,
    };
    for n in 0..10 {
        store.apply_tags(batch(n)).await.expect("tag");
    }

    // Everything folded into the file, then the tags table's root page overwritten
    // under the running store. The checkpoint resets the WAL, so every connection
    // reads the file afresh.
    let (page, page_size): (u64, u64) = {
        let conn = Connection::open(&path).expect("open");
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .expect("checkpoint");
        assert_eq!(busy, 0);
        let page = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'tags'",
                [],
                |r| r.get(0),
            )
            .expect("root page");
        let size = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .expect("page size");
        (page, size)
    };
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the file");
        file.seek(SeekFrom::Start((page - 1) * page_size))
            .expect("seek");
        file.write_all(&[0xA5; 64]).expect("damage");
    }

    let read = store.resource_tags(&at(1)).await;
    assert!(
        matches!(read, Err(StoreError::Poisoned(_))),
        "a damaged read: {read:?}"
    );
    // From then on nothing is answered, reads of undamaged pages included.
    assert!(matches!(
        store.apply_tags(batch(20)).await,
        Err(StoreError::Poisoned(_))
    ));
    assert!(matches!(
        store.domain(&domain.id).await,
        Err(StoreError::Poisoned(_))
    ));
    assert!(matches!(
        store.readiness().await,
        Err(StoreError::Poisoned(_))
    ));
}
