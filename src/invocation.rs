//! What an action is given by the command line: the arguments after its name and the standard
//! streams. Every entry of the dispatch table in `cli` takes one [`Io`].

use std::io::{Read, Write};

use crate::error::{Error, Result};

/// The streams and arguments of one invocation, as an action sees them.
pub struct Io<'a> {
    /// The arguments after the action's name.
    pub args: &'a [String],
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
}

impl Io<'_> {
    /// Writes to stdout; a closed stdout is an error the caller sees.
    pub fn print(&mut self, text: &str) -> Result<()> {
        self.stdout
            .write_all(text.as_bytes())
            .and_then(|()| self.stdout.flush())
            .map_err(|e| Error::failed(format!("cannot write to standard output: {e}")))
    }
}

/// An argument echoed in a message: printable and short.
pub fn shown(arg: &str) -> String {
    let mut s: String = arg.chars().filter(|c| !c.is_control()).take(64).collect();
    if arg.chars().count() > 64 {
        s.push('…');
    }
    s
}
