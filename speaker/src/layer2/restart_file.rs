//! What a speaker stopped for a planned restart leaves for its replacement on the node: the
//! boot number it gossiped under and the deadline it announced (see
//! `ferrolb_shared::l2::gossip::restart`). The replacement gossips under the next boot
//! number, so the other speakers see the same member come back (not a late starter, held
//! down while its addresses move to another node and back) and it takes its addresses back
//! as their owner.
//!
//! The file lives on the node (`/run/ferrolb`, a hostPath: it outlives the pod, not a
//! reboot) and is read once and removed at start. Anything unreadable, malformed or past its
//! deadline is ignored with a warning: the speaker then starts as a new one, which is always
//! safe.
//!
//! ```text
//! boot <u64>
//! until_ms <u64>
//! ```

use std::io;
use std::path::Path;

/// Where the speaker keeps it unless told otherwise (`--l2-restart-file`).
pub const DEFAULT_PATH: &str = "/run/ferrolb/layer2-restart";

/// A planned restart in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The boot number the stopped speaker gossiped under.
    pub boot: u64,
    /// Its announced deadline (ms since the epoch).
    pub until_ms: u64,
}

impl Resume {
    fn render(&self) -> String {
        format!("boot {}\nuntil_ms {}\n", self.boot, self.until_ms)
    }

    fn parse(text: &str) -> Option<Resume> {
        let mut boot = None;
        let mut until_ms = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line.trim().split_once(' ')?;
            let value: u64 = value.trim().parse().ok()?;
            match key {
                "boot" => boot = Some(value),
                "until_ms" => until_ms = Some(value),
                _ => return None,
            }
        }
        Some(Resume {
            boot: boot?,
            until_ms: until_ms?,
        })
    }
}

/// Write `resume` to `path` (atomically: a half-written file would be ignored anyway).
pub fn save(path: &Path, resume: Resume) -> io::Result<()> {
    ferrolb_cluster::files::write_atomic(path, resume.render().as_bytes())
}

/// Read and remove the file at `path`: the boot number to gossip under, if a planned
/// restart is in progress (its deadline after `now_ms`).
pub fn take(path: &Path, now_ms: u64) -> Option<u64> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), "cannot read the planned-restart file: {e}");
            return None;
        }
    };
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(file = %path.display(), "cannot remove the planned-restart file: {e}");
    }
    let Some(resume) = Resume::parse(&text) else {
        tracing::warn!(file = %path.display(), "ignoring a malformed planned-restart file");
        return None;
    };
    if resume.until_ms <= now_ms {
        tracing::info!(
            late_ms = now_ms - resume.until_ms,
            "the previous speaker's planned restart deadline has passed: starting as a new speaker"
        );
        return None;
    }
    // The next boot number: larger than the old identity's, so it wins everywhere.
    resume.boot.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_restart_is_taken_once_and_only_before_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer2-restart");
        assert_eq!(take(&path, 1), None, "no file");
        let resume = Resume {
            boot: 1_000,
            until_ms: 5_000,
        };
        save(&path, resume).unwrap();
        assert_eq!(take(&path, 4_999), Some(1_001));
        assert!(!path.exists(), "removed once read");
        assert_eq!(take(&path, 4_999), None);
        save(&path, resume).unwrap();
        assert_eq!(take(&path, 5_000), None, "deadline passed");
        assert!(!path.exists());
    }

    #[test]
    fn malformed_files_are_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer2-restart");
        for text in [
            "",
            "boot 1\n",
            "boot x\nuntil_ms 5\n",
            "boot 1\nuntil_ms 5\nmore 3\n",
            "boot 18446744073709551615\nuntil_ms 5000\n",
            "\u{0}\u{ff}",
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(take(&path, 1), None, "{text:?}");
            assert!(!path.exists(), "{text:?}");
        }
    }
}
