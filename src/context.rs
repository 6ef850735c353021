//! Everything an action needs from the outside world, gathered once: the environment snapshot,
//! the log, the clock, the IAM exchange, and the config file (read on first use, so that a `get`
//! for a host that needs no config never opens it).

use std::cell::OnceCell;
use std::path::PathBuf;

use crate::clock::Clock;
use crate::config::Config;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::iam::{Endpoint, Exchange};
use crate::log::Log;
use crate::logins::Logins;
use crate::mode::Mode;
use crate::paths;
use crate::registry::Registry;

pub struct Context<'a> {
    pub env: &'a Env,
    pub log: &'a Log<'a>,
    pub clock: &'a dyn Clock,
    pub exchange: &'a dyn Exchange,
    config: OnceCell<Result<Option<Config>>>,
}

impl<'a> Context<'a> {
    pub fn new(env: &'a Env, log: &'a Log<'a>, clock: &'a dyn Clock, exchange: &'a dyn Exchange) -> Self {
        Context { env, log, clock, exchange, config: OnceCell::new() }
    }

    /// Where the config file is (see [`paths::config_file`]).
    pub fn config_path(&self) -> Result<Option<PathBuf>> {
        paths::config_file(self.env)
    }

    /// The config file, read once; `None` when there is none.
    pub fn config(&self) -> Result<Option<&Config>> {
        let loaded = self.config.get_or_init(|| match self.config_path()? {
            Some(path) => Config::load(&path),
            None => Ok(None),
        });
        match loaded {
            Ok(config) => Ok(config.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The stored logins; `None` without a config directory.
    pub fn logins(&self) -> Result<Option<Logins>> {
        Ok(paths::logins_file(self.env)?.map(Logins::new))
    }

    /// The stored logins, for the actions that write them: without a config directory, an error
    /// that says what to set.
    pub fn logins_to_write(&self) -> Result<Logins> {
        self.logins()?.ok_or_else(|| {
            Error::failed("no config directory: set HOME, XDG_CONFIG_HOME or DOCKER_CREDENTIAL_ICR_CONFIG")
        })
    }

    /// The mode for `registry`: `DOCKER_CREDENTIAL_ICR_MODE`, else the config file's entry for
    /// the host, its region, or its default, else `iamapikey`.
    pub fn mode(&self, registry: &Registry) -> Result<Mode> {
        if let Some(value) = self.env.get("DOCKER_CREDENTIAL_ICR_MODE")? {
            return value.parse().map_err(|e| Error::failed(format!("DOCKER_CREDENTIAL_ICR_MODE: {e}")));
        }
        Ok(self.config()?.and_then(|c| c.resolve(registry).mode).unwrap_or(Mode::ApiKey))
    }

    /// The IAM endpoint: `DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT`, `IBMCLOUD_IAM_API_ENDPOINT`, the
    /// config file's `iamEndpoint`, else IBM Cloud's public one; with the config file's
    /// `iamCaFile`, if any, to trust for it.
    pub fn iam_endpoint(&self) -> Result<Endpoint> {
        let config = self.config()?;
        let ca_file = config.and_then(|c| c.iam_ca_file.clone());
        for name in ["DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", "IBMCLOUD_IAM_API_ENDPOINT"] {
            if let Some(value) = self.env.get(name)? {
                let endpoint = Endpoint::parse(value).map_err(|e| Error::failed(format!("{name}: {e}")))?;
                return Ok(endpoint.with_ca_file(ca_file));
            }
        }
        Ok(config.and_then(|c| c.iam_endpoint.clone()).unwrap_or_default().with_ca_file(ca_file))
    }

    /// The VPC instance metadata service: `DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL`, else
    /// `http://169.254.169.254`.
    pub fn metadata_endpoint(&self) -> Result<Endpoint> {
        const NAME: &str = "DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL";
        match self.env.get(NAME)? {
            Some(value) => Endpoint::metadata(value).map_err(|e| Error::failed(format!("{NAME}: {e}"))),
            None => Ok(Endpoint::metadata_default()),
        }
    }
}
