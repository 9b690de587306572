//! `BFDProfile` to session timers.

use super::*;

#[test]
fn profile_defaults_are_metallb_defaults() {
    let spec = BFDProfileSpec::default();
    let config = SessionConfig::from_profile(&spec).unwrap();
    assert_eq!(config, SessionConfig::default());
    assert_eq!(config.desired_min_tx, ms(300));
    assert_eq!(config.required_min_rx, ms(300));
    assert_eq!(config.detect_mult.get(), 3);
    assert!(!config.passive);
    assert_eq!(minimum_ttl(&spec), 254);
    assert!(!echo_mode_ignored(&spec));
}

#[test]
fn profile_fields_map_to_the_session() {
    let spec = BFDProfileSpec {
        receive_interval: Some(250),
        transmit_interval: Some(100),
        detect_multiplier: Some(5),
        echo_interval: Some(20),
        echo_mode: Some(true),
        passive_mode: Some(true),
        minimum_ttl: Some(10),
    };
    assert_eq!(
        SessionConfig::from_profile(&spec),
        Ok(SessionConfig {
            desired_min_tx: ms(100),
            required_min_rx: ms(250),
            detect_mult: mult(5),
            passive: true,
        })
    );
    assert!(echo_mode_ignored(&spec));
    assert_eq!(minimum_ttl(&spec), 10);
    assert_eq!(
        minimum_ttl(&BFDProfileSpec {
            minimum_ttl: Some(1000),
            ..spec.clone()
        }),
        255
    );
    assert_eq!(
        SessionConfig::from_profile(&BFDProfileSpec {
            detect_multiplier: Some(256),
            ..spec.clone()
        }),
        Err(ProfileError::DetectMultiplier(256))
    );
    assert_eq!(
        SessionConfig::from_profile(&BFDProfileSpec {
            detect_multiplier: Some(0),
            ..spec.clone()
        }),
        Err(ProfileError::DetectMultiplier(0))
    );
    let zero = SessionConfig::from_profile(&BFDProfileSpec {
        transmit_interval: Some(0),
        ..spec
    })
    .unwrap_err();
    assert_eq!(zero, ProfileError::ZeroInterval("transmitInterval"));
    assert_eq!(zero.to_string(), "transmitInterval is 0 ms");
}
