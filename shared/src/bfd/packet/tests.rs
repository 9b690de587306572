//! Fixed vectors both ways, the §6.8.6 checks one by one, and properties.
//!
//! The vectors are UDP payloads captured on a veth pair between two network namespaces
//! (created and deleted for the capture) running BIRD 2.0.12 (`protocol bfd`, 300 ms × 3,
//! idle tx 1 s) against FRR 8.4.4 `bfdd` (peer with 300 ms × 3, later reconfigured to
//! 200/250 ms × 5, shut down and re-enabled). The error cases are built from RFC 5880 §4.1.

use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

fn mult(v: u8) -> NonZeroU8 {
    NonZeroU8::new(v).unwrap()
}

/// A plain packet: no flags, no diagnostic.
fn base(state: State, my: u32, your: u32, tx_us: u32, rx_us: u32, echo_us: u32) -> ControlPacket {
    ControlPacket {
        diag: Diag::NoDiagnostic,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: mult(3),
        my_discriminator: nz(my),
        your_discriminator: NonZeroU32::new(your),
        desired_min_tx_us: tx_us,
        required_min_rx_us: rx_us,
        required_min_echo_rx_us: echo_us,
    }
}

/// (where it comes from, payload, decoded)
fn vectors() -> Vec<(&'static str, &'static str, ControlPacket)> {
    let bird_a = 0xea2c_a05b;
    let bird_b = 0xd1db_fb15;
    let frr_a = 0xd0f1_3b6c;
    let frr_b = 0x7e1f_b3fe;
    vec![
        (
            "BIRD, first packet: Down, slow 1 s TX, 300 ms RX, no echo",
            "20400318 ea2ca05b 00000000 000f4240 000493e0 00000000",
            base(State::Down, bird_a, 0, 1_000_000, 300_000, 0),
        ),
        (
            "FRR answers: Init, 1 s both ways while not Up, echo RX 50 ms",
            "20800318 d0f13b6c ea2ca05b 000f4240 000f4240 0000c350",
            base(State::Init, frr_a, bird_a, 1_000_000, 1_000_000, 50_000),
        ),
        (
            "BIRD goes Up and polls for its 300 ms TX",
            "20e00318 ea2ca05b d0f13b6c 000493e0 000493e0 00000000",
            ControlPacket {
                poll: true,
                ..base(State::Up, bird_a, frr_a, 300_000, 300_000, 0)
            },
        ),
        (
            "FRR's Final",
            "20d00318 d0f13b6c ea2ca05b 000493e0 000493e0 0000c350",
            ControlPacket {
                final_: true,
                ..base(State::Up, frr_a, bird_a, 300_000, 300_000, 50_000)
            },
        ),
        (
            "FRR after BIRD fell silent: Down, diag 1, BIRD's discriminator forgotten",
            "21400318 d0f13b6c 00000000 000493e0 000493e0 0000c350",
            ControlPacket {
                diag: Diag::ControlDetectionTimeExpired,
                ..base(State::Down, frr_a, 0, 300_000, 300_000, 50_000)
            },
        ),
        (
            "FRR, Init keeping diag 1",
            "21800318 d0f13b6c d1dbfb15 000f4240 000f4240 0000c350",
            ControlPacket {
                diag: Diag::ControlDetectionTimeExpired,
                ..base(State::Init, frr_a, bird_b, 1_000_000, 1_000_000, 50_000)
            },
        ),
        (
            "FRR reconfigured while Up: 200 ms TX, 250 ms RX, multiplier 5, Poll",
            "20e00518 7e1fb3fe d1dbfb15 00030d40 0003d090 0000c350",
            ControlPacket {
                poll: true,
                detect_mult: mult(5),
                ..base(State::Up, frr_b, bird_b, 200_000, 250_000, 50_000)
            },
        ),
        (
            "BIRD's Final to it",
            "20d00318 d1dbfb15 7e1fb3fe 000493e0 000493e0 00000000",
            ControlPacket {
                final_: true,
                ..base(State::Up, bird_b, frr_b, 300_000, 300_000, 0)
            },
        ),
        (
            "FRR shut down: AdminDown (FRR sends diag 0)",
            "20000518 7e1fb3fe d1dbfb15 00030d40 0003d090 0000c350",
            ControlPacket {
                detect_mult: mult(5),
                ..base(State::AdminDown, frr_b, bird_b, 200_000, 250_000, 50_000)
            },
        ),
        (
            "BIRD goes Down, diag 3, polling for its slow 1 s TX",
            "23600318 d1dbfb15 7e1fb3fe 000f4240 000493e0 00000000",
            ControlPacket {
                diag: Diag::NeighborSignaledSessionDown,
                poll: true,
                ..base(State::Down, bird_b, frr_b, 1_000_000, 300_000, 0)
            },
        ),
        (
            "FRR, AdminDown, answers the Poll",
            "20100518 7e1fb3fe d1dbfb15 00030d40 0003d090 0000c350",
            ControlPacket {
                final_: true,
                detect_mult: mult(5),
                ..base(State::AdminDown, frr_b, bird_b, 200_000, 250_000, 50_000)
            },
        ),
        (
            "BIRD, a Detection Time later: FRR's discriminator forgotten",
            "23400318 d1dbfb15 00000000 000f4240 000493e0 00000000",
            ControlPacket {
                diag: Diag::NeighborSignaledSessionDown,
                ..base(State::Down, bird_b, 0, 1_000_000, 300_000, 0)
            },
        ),
    ]
}

#[test]
fn captured_packets_parse() {
    for (what, bytes, expected) in vectors() {
        assert_eq!(ControlPacket::parse(&hex(bytes)), Ok(expected), "{what}");
    }
}

#[test]
fn captured_packets_encode_bit_for_bit() {
    for (what, bytes, packet) in vectors() {
        assert_eq!(packet.to_bytes().to_vec(), hex(bytes), "{what}");
    }
}

#[test]
fn rfc_constructed_packet_with_every_allowed_flag() {
    // Version 1, diag 8, Up, P clear, F set, C set, D set; multiplier 255; all-ones words.
    let bytes = hex("28 da ff 18 ffffffff 00000001 ffffffff 00000000 00000001");
    let packet = ControlPacket::parse(&bytes).unwrap();
    assert_eq!(
        packet,
        ControlPacket {
            diag: Diag::ReverseConcatenatedPathDown,
            state: State::Up,
            poll: false,
            final_: true,
            control_plane_independent: true,
            demand: true,
            detect_mult: mult(255),
            my_discriminator: nz(u32::MAX),
            your_discriminator: Some(nz(1)),
            desired_min_tx_us: u32::MAX,
            required_min_rx_us: 0,
            required_min_echo_rx_us: 1,
        }
    );
    assert_eq!(packet.to_bytes().to_vec(), bytes);
}

fn valid() -> Vec<u8> {
    hex("20c00318 00000001 00000002 000493e0 000493e0 00000000")
}

fn with(edit: impl FnOnce(&mut Vec<u8>)) -> Result<ControlPacket, PacketError> {
    let mut bytes = valid();
    edit(&mut bytes);
    ControlPacket::parse(&bytes)
}

#[test]
fn rejects_short_datagrams() {
    for len in 0..4 {
        assert_eq!(
            ControlPacket::parse(&valid()[..len]),
            Err(PacketError::Truncated { available: len })
        );
    }
    // The first word is there, so it is the Length field that is beyond the datagram.
    assert_eq!(
        ControlPacket::parse(&valid()[..23]),
        Err(PacketError::LengthExceedsPayload {
            length: 24,
            available: 23
        })
    );
}

#[test]
fn rejects_other_versions() {
    for version in [0u8, 2, 7] {
        assert_eq!(
            with(|b| b[0] = (version << 5) | (b[0] & 0x1f)),
            Err(PacketError::Version(version))
        );
    }
}

#[test]
fn rejects_length_below_minimum() {
    assert_eq!(
        with(|b| b[3] = 23),
        Err(PacketError::LengthTooShort {
            length: 23,
            minimum: 24
        })
    );
    // With the A bit, 26 is the minimum (mandatory section + Auth Type + Auth Len).
    for length in [24u8, 25] {
        assert_eq!(
            with(|b| {
                b[1] |= 0x04;
                b[3] = length;
                b.resize(26, 0);
            }),
            Err(PacketError::LengthTooShort {
                length,
                minimum: 26
            })
        );
    }
}

#[test]
fn rejects_length_beyond_datagram() {
    assert_eq!(
        with(|b| b[3] = 25),
        Err(PacketError::LengthExceedsPayload {
            length: 25,
            available: 24
        })
    );
}

#[test]
fn ignores_bytes_after_the_mandatory_section() {
    let expected = ControlPacket::parse(&valid()).unwrap();
    // UDP padding after Length.
    assert_eq!(with(|b| b.extend_from_slice(&[0xee; 6])), Ok(expected));
    // A longer Length without the A bit.
    assert_eq!(
        with(|b| {
            b[3] = 32;
            b.extend_from_slice(&[0xee; 8]);
        }),
        Ok(expected)
    );
}

#[test]
fn rejects_zero_detect_mult() {
    assert_eq!(with(|b| b[2] = 0), Err(PacketError::DetectMultZero));
}

#[test]
fn rejects_multipoint() {
    assert_eq!(with(|b| b[1] |= 0x01), Err(PacketError::Multipoint));
}

#[test]
fn rejects_zero_my_discriminator() {
    assert_eq!(
        with(|b| b[4..8].fill(0)),
        Err(PacketError::MyDiscriminatorZero)
    );
}

#[test]
fn zero_your_discriminator_only_when_down() {
    for (code, state) in [(2u8, State::Init), (3, State::Up)] {
        assert_eq!(
            with(|b| {
                b[1] = (b[1] & 0x3f) | (code << 6);
                b[8..12].fill(0);
            }),
            Err(PacketError::YourDiscriminatorZero(state))
        );
    }
    for (code, state) in [(0u8, State::AdminDown), (1, State::Down)] {
        let packet = with(|b| {
            b[1] = (b[1] & 0x3f) | (code << 6);
            b[8..12].fill(0);
        })
        .unwrap();
        assert_eq!((packet.state, packet.your_discriminator), (state, None));
    }
}

#[test]
fn rejects_authentication_naming_the_type() {
    // Simple password (RFC 5880 §4.2): type 1, len 7, key id 1, "abcd".
    let err = with(|b| {
        b[1] |= 0x04;
        b[3] = 31;
        b.extend_from_slice(&[1, 7, 1, b'a', b'b', b'c', b'd']);
    })
    .unwrap_err();
    assert_eq!(err, PacketError::Authentication { auth_type: 1 });
    let message = err.to_string();
    assert!(message.contains("simple password"), "{message}");
    assert!(message.contains("type 1"), "{message}");
    // Keyed SHA1, 28 bytes of section.
    assert_eq!(
        with(|b| {
            b[1] |= 0x04;
            b[3] = 52;
            b.push(4);
            b.push(28);
            b.extend_from_slice(&[0; 26]);
        }),
        Err(PacketError::Authentication { auth_type: 4 })
    );
}

#[test]
fn checks_run_in_rfc_order() {
    // Wrong version and everything else wrong too: the version is reported.
    let mut bytes = vec![0u8; 24];
    bytes[0] = 0xe0;
    bytes[1] = 0xc5;
    assert_eq!(ControlPacket::parse(&bytes), Err(PacketError::Version(7)));
    // A malformed authenticated packet is reported as malformed, not as authenticated.
    assert_eq!(
        with(|b| {
            b[1] |= 0x04;
            b[2] = 0;
            b[3] = 26;
            b.extend_from_slice(&[1, 2]);
        }),
        Err(PacketError::DetectMultZero)
    );
}

#[test]
fn error_messages_carry_the_value() {
    let cases = [
        (PacketError::Truncated { available: 3 }, "3 bytes"),
        (PacketError::Version(2), "version 2"),
        (
            PacketError::LengthTooShort {
                length: 20,
                minimum: 24,
            },
            "Length 20",
        ),
        (
            PacketError::LengthExceedsPayload {
                length: 40,
                available: 24,
            },
            "24 bytes",
        ),
        (PacketError::YourDiscriminatorZero(State::Up), "state Up"),
    ];
    for (err, needle) in cases {
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn diag_and_state_codes_round_trip() {
    for code in 0..32u8 {
        assert_eq!(Diag::from_code(code).code(), code);
    }
    assert_eq!(Diag::from_code(1), Diag::ControlDetectionTimeExpired);
    assert_eq!(Diag::from_code(3), Diag::NeighborSignaledSessionDown);
    assert_eq!(Diag::from_code(9), Diag::Reserved(9));
    for code in 0..4u8 {
        assert_eq!(State::from_code(code).code(), code);
    }
}

fn arb_packet() -> impl Strategy<Value = ControlPacket> {
    (
        (0..32u8, 0..4u8, any::<[bool; 4]>(), 1..=255u8),
        (1..=u32::MAX, any::<u32>(), any::<[u32; 3]>()),
    )
        .prop_map(|((diag, state, flags, m), (my, your, intervals))| {
            let state = State::from_code(state);
            let your = match state {
                // Init and Up always know the peer's discriminator.
                State::Init | State::Up => your.max(1),
                _ => your,
            };
            let [poll, final_, control_plane_independent, demand] = flags;
            ControlPacket {
                diag: Diag::from_code(diag),
                state,
                poll,
                final_,
                control_plane_independent,
                demand,
                detect_mult: mult(m),
                my_discriminator: nz(my),
                your_discriminator: NonZeroU32::new(your),
                desired_min_tx_us: intervals[0],
                required_min_rx_us: intervals[1],
                required_min_echo_rx_us: intervals[2],
            }
        })
}

proptest! {
    #[test]
    fn encode_then_parse_is_identity(packet in arb_packet()) {
        prop_assert_eq!(ControlPacket::parse(&packet.to_bytes()), Ok(packet));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(packet) = ControlPacket::parse(&bytes) {
            // What parsed re-encodes to the input, but for Length, which is always 24.
            let mut expected = bytes[..MANDATORY_LEN].to_vec();
            expected[3] = MANDATORY_LEN as u8;
            prop_assert_eq!(packet.to_bytes().to_vec(), expected);
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        packet in arb_packet(),
        flips in proptest::collection::vec((0..24usize, any::<u8>()), 1..4),
        extra in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut bytes = packet.to_bytes().to_vec();
        for (at, x) in flips {
            bytes[at] ^= x;
        }
        bytes.extend(extra);
        if let Ok(parsed) = ControlPacket::parse(&bytes) {
            prop_assert_eq!(ControlPacket::parse(&parsed.to_bytes()), Ok(parsed));
        }
    }
}
