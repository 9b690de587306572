//! `core/v1` Events, built the same way by the controller and the speaker: named as client-go
//! names them, with the message cut to what `kubectl describe` shows.

use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::reconcile::EventType;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// Longest message we write. The API server accepts more for core Events, but `kubectl
/// describe` and events.k8s.io (1 KiB `note`) do not; a list of config errors can be long.
pub const MAX_MESSAGE: usize = 1024;

/// A reference to a Service, for an Event about it. With its `uid`, `kubectl describe`
/// finds the Event; without, it is still listed by `kubectl get events`.
pub fn service_ref(key: &ServiceKey, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        namespace: Some(key.namespace.clone()),
        name: Some(key.name.clone()),
        uid,
        ..Default::default()
    }
}

/// Who writes an Event.
#[derive(Clone, Copy)]
pub struct Reporter<'a> {
    /// `source.component` and `reportingComponent`: `ferrolb-controller`, `ferrolb-speaker`.
    pub component: &'a str,
    /// `reportingInstance` (the pod or node).
    pub instance: &'a str,
    /// `source.host`: the node, for the speaker.
    pub host: Option<&'a str>,
}

/// Build an Event about `involved` (in its namespace). `unique` makes the name unique among
/// this process's Events.
pub fn build(
    involved: ObjectReference,
    reporter: Reporter<'_>,
    kind: EventType,
    reason: &str,
    message: &str,
    unique: u64,
) -> Event {
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
            component: Some(reporter.component.into()),
            host: reporter.host.map(Into::into),
        }),
        reporting_component: Some(reporter.component.into()),
        reporting_instance: Some(reporter.instance.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Default::default()
    }
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

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let s = "é".repeat(600); // 1200 bytes
        let t = truncate(&s, MAX_MESSAGE);
        assert!(t.len() <= MAX_MESSAGE);
        assert!(t.ends_with("..."));
    }

    #[test]
    fn service_events_carry_the_reporter_and_the_service() {
        let key = ServiceKey::new("web", "front");
        let reporter = Reporter {
            component: "ferrolb-speaker",
            instance: "node1",
            host: Some("node1"),
        };
        let e = build(
            service_ref(&key, Some("u-1".into())),
            reporter,
            EventType::Normal,
            "nodeAssigned",
            &"x".repeat(5000),
            3,
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("web"));
        assert!(e.metadata.name.unwrap().starts_with("front."));
        assert_eq!(e.involved_object.uid.as_deref(), Some("u-1"));
        assert_eq!(e.source.unwrap().host.as_deref(), Some("node1"));
        assert_eq!(e.reporting_component.as_deref(), Some("ferrolb-speaker"));
        assert!(e.message.unwrap().len() <= MAX_MESSAGE);
    }
}
