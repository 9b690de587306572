//! `core/v1` Events: on a Service (allocation results) or, for what concerns the controller
//! as a whole (configuration accepted or rejected), on its leader Lease.

use super::leader::LEASE_NAME;
use ferrolb_cluster::events::{self, MAX_MESSAGE};
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::ConfigError;
use ferrolb_shared::reconcile::EventType;
use k8s_openapi::api::core::v1::{Event, ObjectReference};

/// `source.component` and `reportingComponent` of our Events.
pub const COMPONENT: &str = "ferrolb-controller";

/// Who an Event is about.
pub enum Regarding<'a> {
    Service {
        key: &'a ServiceKey,
        uid: Option<String>,
    },
    /// The controller itself: its Lease in `namespace`.
    Controller { namespace: &'a str },
}

/// Build an Event. `unique` makes the name unique among this process's Events.
pub fn build(
    regarding: Regarding<'_>,
    kind: EventType,
    reason: &str,
    message: &str,
    identity: &str,
    unique: u64,
) -> Event {
    let involved = match regarding {
        Regarding::Service { key, uid } => events::service_ref(key, uid),
        Regarding::Controller { namespace } => ObjectReference {
            api_version: Some("coordination.k8s.io/v1".into()),
            kind: Some("Lease".into()),
            namespace: Some(namespace.to_string()),
            name: Some(LEASE_NAME.into()),
            ..Default::default()
        },
    };
    let reporter = events::Reporter {
        component: COMPONENT,
        instance: identity,
        host: None,
    };
    events::build(involved, reporter, kind, reason, message, unique)
}

/// The message of a `ConfigRejected` Event: every error that fits, then how many did not.
pub fn rejected_message(errors: &[ConfigError]) -> String {
    let mut msg = format!(
        "configuration rejected with {} error(s); the last good configuration stays in force:",
        errors.len()
    );
    for (i, e) in errors.iter().enumerate() {
        let line = format!(" {e};");
        let rest = errors.len() - i;
        // Keep room for the "... and N more" tail.
        if msg.len() + line.len() + 24 > MAX_MESSAGE {
            msg.push_str(&format!(" ... and {rest} more"));
            return msg;
        }
        msg.push_str(&line);
    }
    msg.pop(); // the last ';'
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_shared::config::Source;

    fn error(i: usize) -> ConfigError {
        ConfigError {
            source: Source::api(),
            kind: "IPAddressPool".into(),
            name: format!("pool-{i}"),
            field: "spec.addresses[0]".into(),
            message: "not a CIDR or range: \"nope\"".into(),
        }
    }

    #[test]
    fn rejected_message_lists_errors_and_counts_the_rest() {
        let one = rejected_message(&[error(1)]);
        assert!(one.contains("pool-1"), "{one}");
        assert!(!one.ends_with(';'));
        let many: Vec<_> = (0..100).map(error).collect();
        let msg = rejected_message(&many);
        assert!(msg.len() <= MAX_MESSAGE, "{}", msg.len());
        assert!(msg.contains("100 error(s)"));
        assert!(msg.contains("pool-0"));
        assert!(msg.contains("more"));
    }

    #[test]
    fn controller_events_regard_the_lease() {
        let e = build(
            Regarding::Controller {
                namespace: "ferrolb-system",
            },
            EventType::Warning,
            "ConfigRejected",
            "m",
            "pod-a",
            7,
        );
        assert_eq!(e.involved_object.kind.as_deref(), Some("Lease"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("ferrolb-system"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert!(e.metadata.name.unwrap().starts_with("ferrolb-controller."));
    }
}
