//! The configuration model: the kinds operators write ([`types`]), how they are read
//! ([`crate::manifest`]) and the all-or-nothing validation that turns a set of objects into a
//! [`Config`] the rest of FerroLB trusts ([`validate`]).

pub mod accept;
pub mod addresses;
pub mod community;
pub mod configuration_state;
pub mod duration;
pub mod error;
pub mod schema_rules;
pub mod session_state;
pub mod types;
pub mod validate;

pub use accept::{ConfigState, Outcome};
pub use configuration_state::{
    CONTROLLER_STATE_NAME, ConfigurationState, ConfigurationStateSpec, ConfigurationStateStatus,
    configuration_state,
};
pub use error::{ConfigError, Source};
pub use session_state::{
    BFD_NOT_CONFIGURED, BGPSessionState, BGPSessionStateSpec, BGPSessionStateStatus,
};
pub use types::*;
pub use validate::{Config, validate};

/// Any one of the configuration kinds.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum ConfigObject {
    IPAddressPool(IPAddressPool),
    L2Advertisement(L2Advertisement),
    BGPAdvertisement(BGPAdvertisement),
    BGPPeer(BGPPeer),
    BFDProfile(BFDProfile),
    Community(Community),
}

impl ConfigObject {
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigObject::IPAddressPool(_) => "IPAddressPool",
            ConfigObject::L2Advertisement(_) => "L2Advertisement",
            ConfigObject::BGPAdvertisement(_) => "BGPAdvertisement",
            ConfigObject::BGPPeer(_) => "BGPPeer",
            ConfigObject::BFDProfile(_) => "BFDProfile",
            ConfigObject::Community(_) => "Community",
        }
    }

    pub fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            ConfigObject::IPAddressPool(o) => &o.metadata,
            ConfigObject::L2Advertisement(o) => &o.metadata,
            ConfigObject::BGPAdvertisement(o) => &o.metadata,
            ConfigObject::BGPPeer(o) => &o.metadata,
            ConfigObject::BFDProfile(o) => &o.metadata,
            ConfigObject::Community(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }
}
