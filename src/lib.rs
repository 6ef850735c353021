//! docker-credential-icr: a docker credential helper for IBM Cloud Container Registry.
//!
//! `main` builds an [`env::Env`] and calls [`cli::run`]; everything else is here, so that tests
//! reach it without a process. Start at `cli` (the table of actions), then `resolve` (server URL
//! → plan → answer). ARCHITECTURE.md draws the layers.
//!
//! Nothing here prints: every action writes through the streams `cli::run` is given, so the
//! protocol's stdout carries nothing but the protocol.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod actions;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod context;
pub mod duration;
pub mod env;
pub mod error;
pub mod files;
pub mod iam;
pub mod invocation;
pub mod jwt;
pub mod kubelet;
pub mod log;
pub mod logins;
pub mod mode;
pub mod paths;
pub mod protocol;
pub mod registry;
pub mod resolve;
pub mod secret;
pub mod source;
pub mod sys;
