//! Diagnostics on stderr, at the level `DOCKER_CREDENTIAL_ICR_LOG` sets (default: warnings).
//!
//! Messages are built from values that cannot hold a secret (`Secret` prints `REDACTED`), and
//! each line is prefixed with the program name so that it stands out in a `docker build` log.

use std::cell::RefCell;
use std::fmt;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    /// Parses `DOCKER_CREDENTIAL_ICR_LOG`; `None` for a value that names no level.
    pub fn parse(value: &str) -> Option<Level> {
        match value.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

pub struct Log<'a> {
    level: Level,
    out: RefCell<&'a mut dyn Write>,
}

impl<'a> Log<'a> {
    pub fn new(level: Level, out: &'a mut dyn Write) -> Self {
        Log { level, out: RefCell::new(out) }
    }

    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    pub fn write(&self, level: Level, message: fmt::Arguments<'_>) {
        if self.enabled(level) {
            let mut out = self.out.borrow_mut();
            // A closed stderr must not turn a good answer into a failure.
            let _ = writeln!(out, "docker-credential-icr: {}: {message}", level.label());
        }
    }

    pub fn error(&self, message: fmt::Arguments<'_>) {
        self.write(Level::Error, message)
    }

    pub fn warn(&self, message: fmt::Arguments<'_>) {
        self.write(Level::Warn, message)
    }

    pub fn info(&self, message: fmt::Arguments<'_>) {
        self.write(Level::Info, message)
    }

    pub fn debug(&self, message: fmt::Arguments<'_>) {
        self.write(Level::Debug, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_and_prefix() {
        let mut buf = Vec::new();
        {
            let log = Log::new(Level::Warn, &mut buf);
            log.debug(format_args!("hidden"));
            log.info(format_args!("hidden"));
            log.warn(format_args!("shown {}", 1));
            log.error(format_args!("shown {}", 2));
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "docker-credential-icr: warning: shown 1\ndocker-credential-icr: error: shown 2\n"
        );
    }

    #[test]
    fn level_names_parse() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
    }
}
