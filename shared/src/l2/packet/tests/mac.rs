use crate::l2::packet::MacAddr;

#[test]
fn displays_lower_case_with_colons() {
    let mac = MacAddr([0xaa, 0xbb, 0x0c, 0x0d, 0xe0, 0x0f]);
    assert_eq!(mac.to_string(), "aa:bb:0c:0d:e0:0f");
    assert_eq!(MacAddr::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
    assert_eq!(format!("{mac:?}"), "MacAddr(aa:bb:0c:0d:e0:0f)");
}

#[test]
fn parses_either_case_and_round_trips() {
    let mac: MacAddr = "AA:bb:0C:0d:e0:0F".parse().unwrap();
    assert_eq!(mac, MacAddr([0xaa, 0xbb, 0x0c, 0x0d, 0xe0, 0x0f]));
    assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
}

#[test]
fn rejects_anything_but_six_two_digit_octets() {
    for bad in [
        "",
        "aa:bb:cc:dd:ee",
        "aa:bb:cc:dd:ee:ff:00",
        "aa:bb:cc:dd:ee:f",
        "aa:bb:cc:dd:ee:fff",
        "aa-bb-cc-dd-ee-ff",
        "aa:bb:cc:dd:ee:gg",
        "aa:bb:cc:dd:ee:+f",
        "aa:bb:cc:dd:ee:ff:",
        "aabb.ccdd.eeff",
    ] {
        let err = bad.parse::<MacAddr>().unwrap_err();
        assert_eq!(err.0, bad);
        assert!(err.to_string().contains("invalid MAC address"), "{err}");
    }
}

#[test]
fn group_bit() {
    assert!(MacAddr::BROADCAST.is_multicast());
    assert!(MacAddr::BROADCAST.is_broadcast());
    assert!(MacAddr([0x33, 0x33, 0, 0, 0, 1]).is_multicast());
    assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
    assert!(!MacAddr([0x02, 0, 0, 0, 0, 1]).is_multicast());
    assert!(!MacAddr::ZERO.is_multicast());
}
