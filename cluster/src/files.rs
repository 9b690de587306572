//! The files of standalone mode: which files of a directory are manifests, a cache that
//! re-reads a file only when it changed, and the layout of the status directory the
//! controller writes and the speaker reads.
//!
//! ```text
//! <status-dir>/services/<namespace>/<name>.yaml   a Service's status and pool annotation
//! <status-dir>/configurationstate.yaml            the controller's ConfigurationState
//! <report-dir>/configurationstate.yaml            a speaker's (speaker_report_dir)
//! ```

use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::{ConfigError, ConfigurationState, Source};
use ferrolb_shared::service::{self, Service};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The manifest files under `path` (or `path` itself, if it is a file), sorted, so that
/// reports and scans are stable. Hidden files and directories are skipped.
pub fn manifest_files(path: &Path, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(file_error(
                    &dir.display().to_string(),
                    format!("cannot list: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let p = entry.path();
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if is_manifest(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Files the manifest readers look at: YAML and JSON, not editor leftovers.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// A problem with a whole file (unreadable, not UTF-8, a directory that cannot be listed).
pub fn file_error(file: &str, message: String) -> ConfigError {
    ConfigError {
        source: Source::file(file, 0),
        kind: "file".into(),
        name: String::new(),
        field: String::new(),
        message,
    }
}

/// What identifies one version of a file. The inode is part of it because writers replace
/// files atomically (write, then rename): a rewrite within the same clock tick and with the
/// same length (`10.0.0.1` → `10.0.0.2`) still gets a new inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

/// Files read once per version: a rescan of an unchanged directory costs one `stat` a file.
#[derive(Debug)]
pub struct FileCache<T> {
    entries: BTreeMap<PathBuf, (Stamp, T)>,
}

impl<T> Default for FileCache<T> {
    fn default() -> Self {
        FileCache {
            entries: BTreeMap::new(),
        }
    }
}

impl<T> FileCache<T> {
    /// The value for `path`, computed by `read` if the file is new or changed since; `None`
    /// when the file does not exist (any more). The flag says whether `read` just ran.
    pub fn get(&mut self, path: &Path, read: impl FnOnce(&Path) -> T) -> Option<(&T, bool)> {
        let Ok(meta) = std::fs::metadata(path) else {
            self.entries.remove(path);
            return None;
        };
        let stamp = Stamp {
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            len: meta.len(),
            inode: meta.ino(),
        };
        let fresh = !self.entries.get(path).is_some_and(|(s, _)| *s == stamp);
        if fresh {
            let value = read(path);
            self.entries.insert(path.to_path_buf(), (stamp, value));
        }
        self.entries.get(path).map(|(_, v)| (v, fresh))
    }

    /// The value last read for `path`, without looking at the file again.
    pub fn peek(&self, path: &Path) -> Option<&T> {
        self.entries.get(path).map(|(_, v)| v)
    }

    /// The value last read for `path`, to change in place.
    pub fn peek_mut(&mut self, path: &Path) -> Option<&mut T> {
        self.entries.get_mut(path).map(|(_, v)| v)
    }

    /// Forget `path`: the next [`Self::get`] reads it again.
    pub fn forget(&mut self, path: &Path) {
        self.entries.remove(path);
    }

    /// Whether `path` has a value (it existed when last looked at).
    pub fn contains(&self, path: &Path) -> bool {
        self.entries.contains_key(path)
    }

    /// Forget every file `keep` says no to.
    pub fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        self.entries.retain(|p, _| keep(p));
    }
}

/// The default status directory for a manifest directory: `<dir>.status` beside it.
pub fn default_status_dir(manifests: &Path) -> PathBuf {
    let mut name = manifests
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "manifests".into());
    name.push(".status");
    manifests.with_file_name(name)
}

/// Where a speaker reports in standalone mode (its Events and what it announces):
/// `<status-dir>.speakers/<node>/`, beside the controller's status directory rather than in
/// it, so that no speaker's writes wake the other speakers' status watchers.
pub fn speaker_report_dir(status_dir: &Path, node: &str) -> PathBuf {
    let mut name = status_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "status".into());
    name.push(".speakers");
    status_dir.with_file_name(name).join(path_component(node))
}

/// Where the status of `key` lives. Names come from the operator's files, so they are made
/// safe as one path component: a name like `../x` must not reach outside the directory.
pub fn status_path(status_dir: &Path, key: &ServiceKey) -> PathBuf {
    status_dir
        .join("services")
        .join(path_component(&key.namespace))
        .join(format!("{}.yaml", path_component(&key.name)))
}

fn path_component(s: &str) -> String {
    let s = s.replace(['/', '\\', '\0'], "_");
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// What the controller recorded for a Service: its addresses and the pool they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedStatus {
    pub ips: Vec<IpAddr>,
    pub pool: Option<String>,
}

impl RecordedStatus {
    /// Put this status on `svc`, as the API server would hold it.
    pub fn apply_to(&self, svc: &mut Service) {
        service::apply_status(svc, &self.ips, self.pool.as_deref());
    }
}

/// Read a status file; `Err` says why it cannot be used.
pub fn read_status(path: &Path) -> Result<RecordedStatus, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let recorded: k8s_openapi::api::core::v1::Service =
        serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    let recorded = Service::from(recorded);
    Ok(RecordedStatus {
        ips: service::status_ips(&recorded).to_vec(),
        pool: service::status_pool(&recorded).map(str::to_string),
    })
}

/// The file a component's `ConfigurationState` is kept in, in standalone mode.
pub const STATE_FILE: &str = "configurationstate.yaml";

/// Write `state` as `dir/configurationstate.yaml` (what `kubectl get configurationstate -o
/// yaml` would show in Kubernetes mode).
pub fn write_state(dir: &Path, state: ConfigurationState) -> std::io::Result<()> {
    let text = serde_yaml::to_string(&state).unwrap_or_default();
    write_atomic(&dir.join(STATE_FILE), text.as_bytes())
}

/// Write `contents` to `path` atomically: readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_paths_stay_inside_the_directory() {
        let dir = Path::new("/s");
        let p = |ns: &str, name: &str| status_path(dir, &ServiceKey::new(ns, name));
        assert_eq!(
            p("default", "web"),
            Path::new("/s/services/default/web.yaml")
        );
        assert_eq!(p("..", "../x"), Path::new("/s/services/_../_.._x.yaml"));
        assert_eq!(p("", ".hidden"), Path::new("/s/services/_/_.hidden.yaml"));
    }

    #[test]
    fn the_cache_rereads_only_changed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.yaml");
        std::fs::write(&f, "one").unwrap();
        let mut cache = FileCache::default();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(cache.get(&f, read), Some((&"one".to_string(), true)));
        assert_eq!(cache.get(&f, read), Some((&"one".to_string(), false)));
        // Same length, replaced by rename (as writers do): seen through the new inode.
        let tmpf = tmp.path().join("a.tmp");
        std::fs::write(&tmpf, "two").unwrap();
        std::fs::rename(&tmpf, &f).unwrap();
        assert_eq!(cache.get(&f, read), Some((&"two".to_string(), true)));
        std::fs::remove_file(&f).unwrap();
        assert_eq!(cache.get(&f, read), None);
    }

    #[test]
    fn default_status_dir_is_beside_the_manifests() {
        assert_eq!(
            default_status_dir(Path::new("/etc/lb")),
            Path::new("/etc/lb.status")
        );
    }
}
