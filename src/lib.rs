//! docker-credential-icr: a docker credential helper for IBM Cloud Container Registry.
//!
//! `main` builds an [`env::Env`] and calls [`cli::run`]; everything else is here, so that tests
//! reach it without a process. Start at `cli` (the actions), then `resolve` (registry → answer).

pub mod actions;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod context;
pub mod env;
pub mod error;
pub mod files;
pub mod iam;
pub mod jwt;
pub mod kubelet;
pub mod log;
pub mod logins;
pub mod mode;
pub mod protocol;
pub mod registry;
pub mod resolve;
pub mod secret;
pub mod source;
