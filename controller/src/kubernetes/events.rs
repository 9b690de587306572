//! `core/v1` Events: on a Service (allocation results) or, for what concerns the controller
//! as a whole (configuration accepted or rejected), on its leader Lease.

use super::leader::LEASE_NAME;
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::ConfigError;
use ferrolb_shared::reconcile::EventType;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// `source.component` and `reportingComponent` of our Events.
pub const COMPONENT: &str = "ferrolb-controller";
/// Longest message we write. The API server accepts more for core Events, but `kubectl
/// describe` and events.k8s.io (1 KiB `note`) do not; a list of config errors can be long.
pub const MAX_MESSAGE: usize = 1024;

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
        Regarding::Service { key, uid } => ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some(key.namespace.clone()),
            name: Some(key.name.clone()),
            uid,
            ..Default::default()
        },
        Regarding::Controller { namespace } => ObjectReference {
            api_version: Some("coordination.k8s.io/v1".into()),
            kind: Some("Lease".into()),
            namespace: Some(namespace.to_string()),
            name: Some(LEASE_NAME.into()),
            ..Default::default()
        },
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let object_name = involved.name.clone().unwrap_or_default();
    // client-go names Events `<object>.<unix nanos in hex>`; the counter keeps two Events of
    // the same nanosecond apart.
    let nanos = u64::try_from(now.as_nanosecond()).unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{object_name}.{nanos:x}{:04x}", unique & 0xffff)),
            namespace: involved.namespace.clone(),
            ..Default::default()
        },
        involved_object: involved,
        reason: Some(reason.into()),
        message: Some(truncate(message, MAX_MESSAGE)),
        type_: Some(
            match kind {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(identity.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Default::default()
    }
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

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    const MARK: &str = "...";
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &s[..end])
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
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let s = "é".repeat(600); // 1200 bytes
        let t = truncate(&s, MAX_MESSAGE);
        assert!(t.len() <= MAX_MESSAGE);
        assert!(t.ends_with("..."));
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
