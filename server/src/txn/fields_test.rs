//! Storage fields (`crucial::store`) of a `#[lambda_object]` struct over the
//! real transaction engine.

use super::{run_with_host, Failure, Limits, Store};
use crucial::__private::store::{FieldRef, LambdaObject, StorageField};
use crucial::store::{Cell, Map, MultiMap, Set, TxError};
use crucial::ObjectId;
use std::sync::Arc;

#[crucial::lambda_object]
struct Forum {
    title: Cell<String>,
    threads: Map<i64, String>,
    tags: Set<String>,
    by_author: MultiMap<String, i64>,
    posts: Cell<u64>,
}

fn forum() -> Arc<ObjectId> {
    Arc::new(ObjectId::new("test", Forum::TYPE_NAME, "f"))
}

fn workflow<T>(store: &Arc<Store>, body: impl Fn(&mut Forum) -> Result<T, TxError>) -> T {
    run_with_host(store, Limits::default(), |host| {
        body(&mut Forum::open(host, forum()))
    })
    .expect("commits")
    .value
}

#[test]
fn the_macro_numbers_fields_in_declaration_order() {
    assert_eq!(Forum::TYPE_NAME, "Forum");
    assert_eq!(
        Forum::FIELDS,
        ["title", "threads", "tags", "by_author", "posts"]
    );
}

#[test]
fn every_field_kind_reads_back_what_committed_workflows_wrote() {
    let store = Arc::new(Store::default());
    workflow(&store, |f| {
        f.title.set(&"Rust".to_string())?;
        for (k, v) in [
            (-5, "minus five"),
            (3, "three"),
            (40, "forty"),
            (-300, "low"),
        ] {
            f.threads.insert(&k, &v.to_string())?;
        }
        for tag in ["b", "a", "c", "a"] {
            f.tags.insert(&tag.to_string())?;
        }
        f.by_author.insert(&"ann".to_string(), &3)?;
        f.by_author.insert(&"ann".to_string(), &-5)?;
        f.by_author.insert(&"bob".to_string(), &40)
    });
    workflow(&store, |f| {
        assert_eq!(f.title.get()?, Some("Rust".to_string()));
        assert_eq!(f.threads.get(&3)?, Some("three".to_string()));
        assert_eq!(f.threads.get(&4)?, None);
        let keys: Vec<i64> = f.threads.entries()?.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [-300, -5, 3, 40], "negative keys sort first");
        let middle: Vec<i64> = f
            .threads
            .range(-5..40)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(middle, [-5, 3]);
        let closed: Vec<i64> = f
            .threads
            .range(-5..=40)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(closed, [-5, 3, 40]);
        assert_eq!(f.tags.values()?, ["a", "b", "c"]);
        assert_eq!(f.tags.range("b".to_string()..)?, ["b", "c"]);
        assert_eq!(f.by_author.get(&"ann".to_string())?, [-5, 3]);
        assert!(f.by_author.contains(&"bob".to_string(), &40)?);
        assert_eq!(f.by_author.entries()?.len(), 3);
        // Fields are separate ranges of the object.
        assert_eq!(f.posts.get()?, None);
        Ok(())
    });
    workflow(&store, |f| {
        f.threads.remove(&3)?;
        f.tags.remove(&"b".to_string())?;
        f.by_author.remove(&"ann".to_string(), &3)?;
        f.title.clear()
    });
    workflow(&store, |f| {
        assert!(!f.threads.contains_key(&3)?);
        assert_eq!(f.tags.values()?, ["a", "c"]);
        assert_eq!(f.by_author.get(&"ann".to_string())?, [-5]);
        assert_eq!(f.title.get()?, None);
        Ok(())
    });
}

#[test]
fn concurrent_increments_of_a_cell_are_never_lost() {
    let store = Arc::new(Store::default());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..200 {
                    workflow(&store, |f| {
                        let n = f.posts.get_or_default()?;
                        std::thread::yield_now();
                        f.posts.set(&(n + 1))
                    });
                }
            });
        }
    });
    assert_eq!(workflow(&store, |f| f.posts.get()), Some(800));
}

#[test]
fn an_entry_of_another_type_fails_the_workflow_with_the_field_named() {
    let store = Arc::new(Store::default());
    workflow(&store, |f| f.title.set(&"not a number".to_string()));
    let failure = run_with_host(&store, Limits::default(), |host| {
        let changed = <Cell<bool> as StorageField>::bind(FieldRef::new(host, forum(), 0, "title"));
        changed.get()
    })
    .unwrap_err();
    let Failure::Failed(error) = failure else {
        panic!("{failure:?}")
    };
    let message = error.to_string();
    assert!(
        message.contains("test/Forum/f.title does not decode"),
        "{message}"
    );
}

#[test]
fn committed_entries_come_back_from_the_data_directory() {
    use crate::storage::{Durability, Storage};
    let dir = std::env::temp_dir().join(format!("crucial-entries-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let durable = |store: &Arc<Store>, body: &dyn Fn(&mut Forum) -> Result<(), TxError>| {
        let committed = run_with_host(store, Limits::default(), |host| {
            body(&mut Forum::open(host, forum()))
        })
        .expect("commits");
        let ticket = committed
            .durable
            .expect("a write on a durable store has a ticket");
        ticket
            .ticket
            .blocking_recv()
            .expect("answered")
            .expect("durable");
    };
    {
        let storage = Arc::new(Storage::open(&dir, Durability::Sync).expect("open"));
        let store = Arc::new(Store::recover(storage, |_| true, |_| false).expect("empty"));
        durable(&store, &|f| {
            f.title.set(&"kept".to_string())?;
            f.threads.insert(&-1, &"minus one".to_string())?;
            f.threads.insert(&2, &"two".to_string())?;
            f.tags.insert(&"x".to_string())
        });
        durable(&store, &|f| f.threads.remove(&2));
    }
    let storage = Arc::new(Storage::open(&dir, Durability::Sync).expect("reopen"));
    let store = Arc::new(Store::recover(storage, |_| true, |_| false).expect("recover"));
    workflow(&store, |f| {
        assert_eq!(f.title.get()?, Some("kept".to_string()));
        assert_eq!(f.threads.entries()?, [(-1, "minus one".to_string())]);
        assert_eq!(f.tags.values()?, ["x"]);
        Ok(())
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_empty_or_inverted_range_is_empty() {
    let store = Arc::new(Store::default());
    workflow(&store, |f| f.threads.insert(&1, &"one".to_string()));
    // Computed bounds, as `latest(n)` on an empty listing makes them.
    let (len, n) = (0i64, 10i64);
    let empty = workflow(&store, |f| {
        Ok((
            f.threads.range(len - n + 11..=len)?,
            f.threads.range(len + 5..len + 2)?,
            f.threads.range(len + 1..len + 1)?,
        ))
    });
    assert_eq!(empty, (vec![], vec![], vec![]));
}
