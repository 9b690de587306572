//! Interned strings: one shared copy of a string that many objects repeat (a node's name in
//! every endpoint on it), so a cluster view holds each once.
//!
//! The table is process-wide, because objects are projected where they enter (a parser, a
//! watcher) with no context to carry one. It stays bounded: strings nobody holds any more are
//! dropped whenever the table has doubled since it was last pruned.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

struct Table {
    strings: HashSet<Arc<str>>,
    /// The size after the last prune.
    pruned_at: usize,
}

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        strings: HashSet::new(),
        pruned_at: 0,
    })
});

/// The shared copy of `s`.
pub fn intern(s: &str) -> Arc<str> {
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = t.strings.get(s) {
        return found.clone();
    }
    if t.strings.len() >= 2 * t.pruned_at + 64 {
        // Only the table holds them: nothing refers to these strings any more.
        t.strings.retain(|s| Arc::strong_count(s) > 1);
        t.pruned_at = t.strings.len();
    }
    let new: Arc<str> = Arc::from(s);
    t.strings.insert(new.clone());
    new
}

/// How many strings the table holds.
#[cfg(test)]
fn len() -> usize {
    TABLE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .strings
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_copy() {
        let a = intern("intern-test-node-a");
        let b = intern(&String::from("intern-test-node-a"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "intern-test-node-a");
        assert!(!Arc::ptr_eq(&a, &intern("intern-test-node-b")));
    }

    #[test]
    fn strings_nobody_holds_are_dropped() {
        // Many short-lived names: the table must not keep them all.
        for i in 0..10_000 {
            drop(intern(&format!("intern-test-gone-{i}")));
        }
        assert!(len() < 5_000, "the table kept {} strings", len());
        let kept = intern("intern-test-kept");
        for i in 0..10_000 {
            drop(intern(&format!("intern-test-gone-again-{i}")));
        }
        assert!(Arc::ptr_eq(&kept, &intern("intern-test-kept")));
    }
}
