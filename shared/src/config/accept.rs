//! Accepting or rejecting a new set of config objects, the same way in every component: the
//! set is validated all-or-nothing, any unreadable document rejects it too, and a rejected
//! set never replaces the last good configuration: it only marks it stale.

use super::{Config, ConfigError, ConfigObject, Source, validate};
use std::sync::Arc;

/// The config objects of one offer and the errors of the documents that could not be read.
pub type ConfigInput = (Vec<(Source, ConfigObject)>, Vec<ConfigError>);

/// What an offer did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The same input as last time (accepted or not): nothing changes, nothing to report.
    Unchanged,
    /// A new configuration is in force.
    Accepted,
    /// Rejected with these errors (sorted); the last good configuration (if any) stays.
    Rejected(Vec<ConfigError>),
}

/// The configuration in force and the verdict on the newest input.
#[derive(Clone, Debug, Default)]
pub struct ConfigState {
    /// The last good configuration. Shared, so that snapshots of it cost nothing.
    config: Option<Arc<Config>>,
    /// The input last offered, accepted or not, to ignore repeats.
    last_input: Option<ConfigInput>,
    /// Whether the newest input was rejected.
    stale: bool,
    /// The errors of the newest input, when it was rejected.
    errors: Vec<ConfigError>,
}

impl ConfigState {
    /// Offer a new set of objects (and the errors of unreadable documents).
    pub fn offer(
        &mut self,
        objects: Vec<(Source, ConfigObject)>,
        read_errors: Vec<ConfigError>,
    ) -> Outcome {
        let input = (objects, read_errors);
        if self.last_input.as_ref() == Some(&input) {
            return Outcome::Unchanged;
        }
        let (objects, read_errors) = self.last_input.insert(input);
        let validated = match validate(objects) {
            Ok(config) if read_errors.is_empty() => Ok(config),
            Ok(_) => Err(read_errors.clone()),
            Err(mut errors) => {
                errors.extend(read_errors.iter().cloned());
                errors.sort();
                Err(errors)
            }
        };
        match validated {
            Ok(config) => {
                self.config = Some(Arc::new(config));
                self.stale = false;
                self.errors.clear();
                Outcome::Accepted
            }
            Err(errors) => {
                self.stale = true;
                self.errors = errors.clone();
                Outcome::Rejected(errors)
            }
        }
    }

    /// The configuration in force, if one was ever accepted.
    pub fn config(&self) -> Option<&Arc<Config>> {
        self.config.as_ref()
    }

    /// Whether the newest input was rejected (so what is in force, if anything, is older).
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// Why the newest input was rejected; empty when it was accepted.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{IPAddressPool, IPAddressPoolSpec};

    fn pool(name: &str, cidr: &str) -> (Source, ConfigObject) {
        let p = IPAddressPool::new(
            name,
            IPAddressPoolSpec {
                addresses: vec![cidr.into()],
                ..Default::default()
            },
        );
        (Source::api(), ConfigObject::IPAddressPool(p))
    }

    #[test]
    fn a_rejection_keeps_the_last_good_config_and_repeats_are_ignored() {
        let mut s = ConfigState::default();
        assert!(s.config().is_none() && !s.stale());
        assert_eq!(
            s.offer(vec![pool("a", "10.0.0.0/24")], vec![]),
            Outcome::Accepted
        );
        let good = s.config().cloned().unwrap();
        assert!(good.pools.contains_key("a"));

        let bad = vec![pool("a", "10.0.0.0/24"), pool("b", "10.0.0.0/33")];
        let Outcome::Rejected(errors) = s.offer(bad.clone(), vec![]) else {
            panic!("must be rejected");
        };
        assert!(errors[0].to_string().contains("10.0.0.0/33"), "{errors:?}");
        assert!(s.stale());
        assert_eq!(s.errors(), errors);
        assert!(Arc::ptr_eq(s.config().unwrap(), &good), "last good kept");
        assert_eq!(s.offer(bad, vec![]), Outcome::Unchanged);

        assert_eq!(
            s.offer(vec![pool("c", "10.1.0.0/24")], vec![]),
            Outcome::Accepted
        );
        assert!(!s.stale() && s.errors().is_empty());
        assert!(s.config().unwrap().pools.contains_key("c"));
    }

    #[test]
    fn an_unreadable_document_rejects_an_otherwise_valid_set() {
        let mut s = ConfigState::default();
        let read = ConfigError {
            source: Source::file("x.yaml", 1),
            kind: "IPAddressPool".into(),
            name: "x".into(),
            field: "spec.adresses".into(),
            message: "unknown field".into(),
        };
        let out = s.offer(vec![pool("a", "10.0.0.0/24")], vec![read.clone()]);
        assert_eq!(out, Outcome::Rejected(vec![read]));
        assert!(s.config().is_none() && s.stale());
    }
}
