//! The `pos` binary's library half: the role registry and how it becomes the command
//! line, `pos serve <role>`, `pos up`, `pos migrate`, `pos batch` and `pos health`, so integration tests start
//! exactly what the binary starts (on port 0).

pub mod batch;
pub mod cli;
pub mod demo;
pub mod flags;
pub mod health;
pub mod keys;
pub mod registry;
pub mod serve;
pub mod startup;
pub mod up;
