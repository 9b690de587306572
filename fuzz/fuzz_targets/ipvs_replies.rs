//! Any bytes given to the readers of the kernel's IPVS generic netlink replies (what the
//! speaker's IPVS driver receives on its socket: virtual server and real server dumps,
//! acknowledgements, the family id): never a panic. Whatever reads as a virtual server or a
//! real server must read back the same after FerroLB encodes it again, so nothing the reader
//! accepts is lost on the way back to the kernel. (The readers take the attributes of any
//! message, so a request reads like the dump reply that carries the same attributes.)
#![no_main]

use ferrolb_shared::ipvs::genl::{
    Command, ServiceId, dest_request, family_id, parse_acks, parse_dests, parse_services,
    service_request,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = family_id(data);
    let _ = parse_acks(data);
    if let Ok(reply) = parse_services(data) {
        for svc in reply.items {
            let again = service_request(0x20, Command::NewService, &svc, 1);
            let read = parse_services(&again).expect("our own encoding reads back");
            assert_eq!(read.items, [svc]);
        }
    }
    if let Ok(reply) = parse_dests(data) {
        for state in reply.items {
            let id = ServiceId::Fwmark {
                ipv6: false,
                mark: 1,
            };
            let again = dest_request(0x20, Command::NewDest, &id, &state.dest, 1);
            let read = parse_dests(&again).expect("our own encoding reads back");
            assert_eq!(read.items.len(), 1);
            assert_eq!(read.items[0].dest, state.dest);
        }
    }
});

