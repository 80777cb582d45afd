//! The `pos` binary's library half: how each role is assembled from the service crates,
//! so integration tests start exactly what the binary starts (on port 0).

pub mod cli;
pub mod demo;
pub mod roles;
pub mod serve;
pub mod stack;
pub mod startup;
