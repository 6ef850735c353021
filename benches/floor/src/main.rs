//! Reads stdin to the end and prints a fixed `get` answer: the cost of starting a process.

use std::io::{Read, Write};

fn main() {
    let mut input = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut input);
    let _ = std::io::stdout()
        .lock()
        .write_all(b"{\"ServerURL\":\"us.icr.io\",\"Username\":\"iamapikey\",\"Secret\":\"floor\"}\n");
}
