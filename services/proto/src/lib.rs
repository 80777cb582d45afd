//! The pos.v1 API as Rust types: messages, tonic clients and servers, and the encoded
//! file descriptor set that server reflection serves.

pub mod codec;

/// Everything in protobuf package `pos.v1`.
pub mod v1 {
    #![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
    tonic::include_proto!("pos.v1");
}

/// The encoded `FileDescriptorSet` of every pos.v1 file (and the well-known types they import).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pos_descriptor.bin"));

/// The same without the internal APIs' files: what the edge's reflection serves, so a
/// client can neither list nor describe a service-to-service API.
pub const PUBLIC_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pos_public_descriptor.bin"));

/// Fully-qualified names of the services clients may call through the edge.
pub const PUBLIC_SERVICES: [&str; 4] = [
    "pos.v1.UserService",
    "pos.v1.StoreService",
    "pos.v1.TradeService",
    "pos.v1.SettlementService",
];

/// Fully-qualified names of the service-to-service APIs; the edge never forwards them.
pub const INTERNAL_SERVICES: [&str; 2] =
    ["pos.v1.StoreInternalService", "pos.v1.TradeInternalService"];
