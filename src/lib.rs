//! The `pos` binary's library half: the role registry and how it becomes the command
//! line, `pos serve <role>`, `pos up` and `pos migrate`, so integration tests start
//! exactly what the binary starts (on port 0).

pub mod cli;
pub mod demo;
pub mod flags;
pub mod registry;
pub mod serve;
pub mod startup;
pub mod up;
