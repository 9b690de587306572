//! One configuration problem, naming where it is: file (or API object), kind, name, field path
//! and the bad value inside the message.

use std::fmt;
use std::sync::Arc;

/// Where a manifest came from: a file and the document's position in it, or the API server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// The file path, or `api` for objects read from Kubernetes. Shared: every document of a
    /// file names it (10,000 Services in a file held 10,000 copies).
    pub file: Arc<str>,
    /// 1-based document number inside a multi-document YAML file; 0 when not from a file.
    pub document: usize,
}

impl Source {
    pub fn file(file: impl Into<Arc<str>>, document: usize) -> Self {
        Source {
            file: file.into(),
            document,
        }
    }
    pub fn api() -> Self {
        Source {
            file: "api".into(),
            document: 0,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.document == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{} (document {})", self.file, self.document)
        }
    }
}

/// A problem with one object. All problems of a configuration are collected and reported
/// together, so an operator fixes them in one round.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigError {
    pub source: Source,
    /// The object's kind (`IPAddressPool`, ...) or `?` when it could not be read.
    pub kind: String,
    /// The object's name, or empty when it has none.
    pub name: String,
    /// JSON-style path inside the object (`spec.addresses[2]`), empty for the whole object.
    pub field: String,
    pub message: String,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.kind)?;
        if !self.name.is_empty() {
            write!(f, " {:?}", self.name)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A problem found while parsing or validating an object; see [`ConfigError`].
#[derive(Clone, Debug)]
pub struct ObjectRef<'a> {
    pub source: &'a Source,
    pub kind: &'a str,
    pub name: &'a str,
}

impl ObjectRef<'_> {
    /// An error about `field` of this object.
    pub fn error(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            source: self.source.clone(),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}
