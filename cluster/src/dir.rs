//! The standalone cluster source: a directory of YAML manifests instead of an API server.
//!
//! Every scan reads the directory (through a [`FileCache`], so unchanged files cost a `stat`),
//! builds its [`Contents`] and sends what changed since the previous scan
//! ([`ferrolb_shared::cluster::scan::diff`]). Scans run on inotify events (debounced, so an
//! editor's burst of writes is one scan) and every 2 s regardless, in case an event was lost.
//! A scan that finds every file as it was (the periodic ones, mostly) stops there: it would
//! copy and compare every object only to find no difference.
//!
//! Service status lives beside the manifests, in the status directory the controller writes
//! (see [`crate::files`]). How a component uses it is its [`StatusDir`]: the controller reads
//! it back once per Service manifest change ([`StatusDir::Restore`], restart stability); the
//! speaker follows it ([`StatusDir::Follow`]): it is the Services' status, watched like the
//! manifests. This source never writes anything.

use crate::EventSink;
use crate::files::{
    FileCache, RecordedStatus, file_error, manifest_files, read_status, status_path,
};
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::cluster::scan::{Contents, SharedFile, diff};
use ferrolb_shared::cluster::{ClusterEvent, ClusterObject, Kind, Subscription};
use ferrolb_shared::config::ConfigError;
use ferrolb_shared::manifest::{ParsedFile, parse_documents};
use ferrolb_shared::service;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long to wait for more file events before rescanning.
const DEBOUNCE: Duration = Duration::from_millis(5);
/// A full rescan even without file events, in case the watcher missed something.
const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// How the status directory is used; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusDir {
    None,
    /// The controller's own status files: read back for a Service whose manifest carries no
    /// status, whenever that manifest changes. Not watched (the controller writes them).
    Restore(PathBuf),
    /// Another component's status files: they are the Services' status (when a Service has
    /// one; otherwise its manifest's status stands), and changes to them are changes.
    Follow(PathBuf),
}

/// Why the directory source cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The manifest directory is missing or is a file.
    #[error("manifest directory {0} does not exist or is not a directory")]
    NotADirectory(PathBuf),
    /// inotify refused (too many watches, for one).
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

/// One manifest file as the cache keeps it. In follow mode its Services carry the status
/// recorded for them (`followed` says which, object by object), so each Service is held once,
/// status included, rather than as the manifest's copy plus a copy with the status (a second
/// 20 MiB at 10,000 Services).
#[derive(Debug)]
struct ManifestFile {
    shared: SharedFile,
    /// Per object of `shared`: the status applied to it, if any.
    followed: Vec<Option<RecordedStatus>>,
}

impl ManifestFile {
    fn read(file: &Path, subscription: &Subscription) -> Self {
        let shared = parse_file(file, subscription);
        ManifestFile {
            followed: vec![None; shared.objects.len()],
            shared,
        }
    }
}

/// Reads a manifest directory and turns changes into [`ClusterEvent`]s.
pub struct DirectorySource {
    dir: PathBuf,
    subscription: Subscription,
    status: StatusDir,
    manifests: FileCache<ManifestFile>,
    /// Follow mode: each status file's content (`None`: unusable, already warned about).
    statuses: FileCache<Option<RecordedStatus>>,
    last: Contents,
    /// The manifest files and listing problems `last` was built from.
    files: Vec<PathBuf>,
    list_errors: Vec<ConfigError>,
}

impl DirectorySource {
    pub fn new(dir: PathBuf, subscription: Subscription, status: StatusDir) -> Self {
        DirectorySource {
            dir,
            subscription,
            status,
            manifests: FileCache::default(),
            statuses: FileCache::default(),
            last: Contents::default(),
            files: Vec::new(),
            list_errors: Vec::new(),
        }
    }

    /// Scan, send `Synced`, then watch for changes until the consumer goes away.
    pub async fn run(mut self, mut sink: impl EventSink) -> Result<(), DirError> {
        if !self.dir.is_dir() {
            return Err(DirError::NotADirectory(self.dir.clone()));
        }
        let (wake_tx, mut wake) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if may_change(&event) {
                    let _ = wake_tx.send(());
                }
            })
            .map_err(|source| self.watch_error(&self.dir, source))?;
        watcher
            .watch(&self.dir, RecursiveMode::Recursive)
            .map_err(|source| self.watch_error(&self.dir, source))?;
        let mut status_watch = StatusWatch::default();
        if let StatusDir::Follow(dir) = &self.status {
            status_watch.arm(&mut watcher, dir);
        }

        let mut events = self.scan();
        events.push(ClusterEvent::Synced);
        if sink.deliver(events).await.is_err() {
            return Ok(());
        }
        loop {
            tokio::select! {
                woke = wake.recv() => {
                    if woke.is_none() {
                        return Ok(());
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    while wake.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(RESCAN_EVERY) => {}
            }
            if let StatusDir::Follow(dir) = &self.status {
                status_watch.arm(&mut watcher, dir);
            }
            let events = self.scan();
            if !events.is_empty() && sink.deliver(events).await.is_err() {
                return Ok(());
            }
        }
    }

    fn watch_error(&self, path: &Path, source: notify::Error) -> DirError {
        DirError::Watch {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Read the directory and return the events that describe what changed since last time.
    pub fn scan(&mut self) -> Vec<ClusterEvent> {
        let mut list_errors = Vec::new();
        let files = manifest_files(&self.dir, &mut list_errors);
        self.manifests
            .retain(|p| files.binary_search_by(|f| f.as_path().cmp(p)).is_ok());
        // Files (re)read by this scan; `None`: removed since listed (the next scan will not
        // list it).
        let subscription = &self.subscription;
        let fresh: Vec<Option<bool>> = files
            .iter()
            .map(|f| {
                self.manifests
                    .get(f, |f| ManifestFile::read(f, subscription))
                    .map(|(_, fresh)| fresh)
            })
            .collect();
        let unchanged = files == self.files
            && list_errors == self.list_errors
            && fresh.iter().all(|f| *f == Some(false))
            && !self.statuses_changed();
        if unchanged {
            return Vec::new(); // `next` would equal `last`
        }
        self.files.clone_from(&files);
        self.list_errors.clone_from(&list_errors);
        if let StatusDir::Follow(dir) = &self.status {
            self.follow_status(&dir.clone(), &files);
        }
        let mut next = Contents::with_errors(list_errors);
        for (file, fresh) in files.iter().zip(fresh) {
            let Some(parsed) = self.manifests.peek(file) else {
                continue;
            };
            let ignored = next.add_file(&parsed.shared);
            if fresh == Some(true) {
                // Logged when the file is read, not at every rescan.
                for e in ignored {
                    tracing::warn!("ignoring a manifest: {e}");
                }
            }
        }
        let mut events = diff(&self.last, &next);
        if let StatusDir::Restore(dir) = &self.status {
            for event in &mut events {
                if let ClusterEvent::Upsert(ClusterObject::Service(svc)) = event {
                    restore_status(dir, svc);
                }
            }
        }
        self.last = next;
        events
    }

    /// Follow mode, with the manifests as they were: whether a status file of a Service of
    /// `last` appeared, changed or went away. Stops at the first: the scan then reads them all.
    fn statuses_changed(&mut self) -> bool {
        let StatusDir::Follow(dir) = &self.status else {
            return false;
        };
        for (key, _) in self.last.of_kind(Kind::Service) {
            let path = status_path(dir, &ServiceKey::new(&key.namespace, &key.name));
            let had = self.statuses.contains(&path);
            let changed = match self.statuses.get(&path, read_followed_status) {
                Some((_, fresh)) => fresh || !had,
                None => had,
            };
            if changed {
                return true;
            }
        }
        false
    }

    /// Give every Service in the cached files the status recorded for it, if any, in place:
    /// a Service is copied only when its status changes (the old version lives on in `last`
    /// until the scan ends). A Service whose status went away gets its manifest back by
    /// reading its file again (rare: the controller released its addresses).
    fn follow_status(&mut self, dir: &Path, files: &[PathBuf]) {
        let mut wanted = Vec::new();
        let mut reread = Vec::new();
        for file in files {
            if self.follow_file(dir, file, &mut wanted) {
                reread.push(file);
            }
        }
        for file in reread {
            let subscription = &self.subscription;
            self.manifests.forget(file);
            self.manifests
                .get(file, |f| ManifestFile::read(f, subscription));
            self.follow_file(dir, file, &mut wanted);
        }
        wanted.sort();
        self.statuses
            .retain(|p| wanted.binary_search_by(|w| w.as_path().cmp(p)).is_ok());
    }

    /// [`Self::follow_status`] for one file; `true` when it must be read again.
    fn follow_file(&mut self, dir: &Path, file: &Path, wanted: &mut Vec<PathBuf>) -> bool {
        let Some(m) = self.manifests.peek_mut(file) else {
            return false;
        };
        let mut reread = false;
        for (obj, followed) in m.shared.objects.iter_mut().zip(&mut m.followed) {
            if obj.kind() != Kind::Service {
                continue;
            }
            let key = obj.key();
            let path = status_path(dir, &ServiceKey::new(&key.namespace, &key.name));
            let recorded = self
                .statuses
                .get(&path, read_followed_status)
                .and_then(|(r, _)| r.clone());
            wanted.push(path);
            if recorded == *followed {
                continue;
            }
            match &recorded {
                Some(r) => {
                    if let ClusterObject::Service(svc) = Arc::make_mut(obj) {
                        r.apply_to(Arc::make_mut(svc));
                    }
                    *followed = recorded;
                }
                None => reread = true,
            }
        }
        reread
    }
}

/// Whether a watcher report may mean that something in the directories changed. notify's
/// inotify backend also reports opens and read-only closes (`IN_OPEN`, `IN_CLOSE_NOWRITE`), and
/// every scan opens the directories it lists: waking on those made each scan wake the next
/// (and every reader of the directory, the other speakers and the controller, wake all the
/// others), a busy loop of full scans that cost a third of a core with 1,000 Services. A
/// close after writing still wakes (the write is complete); so does anything else, errors
/// included (a lost event is a reason to look).
fn may_change(event: &notify::Result<notify::Event>) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event {
        Ok(e) => match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => e.need_rescan(),
            _ => true,
        },
        Err(_) => true,
    }
}

/// A followed status file's content; `None` (warned about once, when read) if unusable.
fn read_followed_status(path: &Path) -> Option<RecordedStatus> {
    match read_status(path) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(file = %path.display(), "ignoring an unreadable status file: {e}");
            None
        }
    }
}

fn parse_file(file: &Path, subscription: &Subscription) -> SharedFile {
    let name = file.display().to_string();
    let parsed = match std::fs::read(file).map(String::from_utf8) {
        Ok(Ok(text)) => parse_documents(&name, &text),
        Ok(Err(_)) => bad_file(&name, "not UTF-8 text".into()),
        Err(e) => bad_file(&name, format!("cannot read: {e}")),
    };
    SharedFile::keeping(parsed, subscription)
}

fn bad_file(name: &str, message: String) -> ParsedFile {
    ParsedFile {
        objects: Vec::new(),
        errors: vec![file_error(name, message)],
    }
}

/// Copy the status recorded for a Service whose manifest has none into it, as the API server
/// would hold it. The Service is copied (it is shared with the file cache) only when there is
/// a status to give it: copying every Service cost the controller 15 MiB at 10,000.
fn restore_status(dir: &Path, svc: &mut Arc<service::Service>) {
    if !service::status_ips(svc).is_empty() {
        return;
    }
    let key = service::service_key(svc);
    let path = status_path(dir, &key);
    if !path.exists() {
        return;
    }
    match read_status(&path) {
        Ok(recorded) => recorded.apply_to(Arc::make_mut(svc)),
        Err(e) => tracing::warn!(service = %key, "ignoring an unreadable status file: {e}"),
    }
}

/// Keeps an inotify watch on a status directory that may not exist yet (the speaker can start
/// before the controller has written anything): while it is missing, its parent is watched
/// so that its creation wakes a scan; once it exists, it is watched itself, recursively.
#[derive(Default)]
struct StatusWatch {
    watching: Option<PathBuf>,
}

impl StatusWatch {
    fn arm(&mut self, watcher: &mut impl Watcher, dir: &Path) {
        let (target, mode) = if dir.is_dir() {
            (dir.to_path_buf(), RecursiveMode::Recursive)
        } else {
            match dir.parent().filter(|p| p.is_dir()) {
                Some(parent) => (parent.to_path_buf(), RecursiveMode::NonRecursive),
                None => return, // nothing to watch; the periodic rescan still looks
            }
        };
        if self.watching.as_ref() == Some(&target) {
            return;
        }
        if let Some(old) = self.watching.take() {
            let _ = watcher.unwatch(&old); // may be gone already, with its watch
        }
        match watcher.watch(&target, mode) {
            Ok(()) => self.watching = Some(target),
            Err(e) => tracing::warn!(
                path = %target.display(),
                "cannot watch the status directory ({e}); relying on the periodic rescan"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
