//! Where commands print: stdout, locked once and buffered. A reader that goes
//! away early (`recharge replay BIG | head -c 100`) ends the command quietly
//! and successfully, as command-line tools do (Rust ignores SIGPIPE, so the
//! write fails with `BrokenPipe` instead of killing the process, and `println!`
//! would panic); any other write failure, a full disk say, is a one-line error.

use std::fmt;
use std::io::{self, BufWriter, Write};

/// Stdout's reader went away: the command stops, and there is nothing to report.
#[derive(Debug)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the output was closed")
    }
}

impl std::error::Error for Closed {}

/// Write to stdout through `write`, then flush: a closed pipe is [`Closed`],
/// any other failure an error naming the output.
pub fn print(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Err(Closed.into()),
        Err(err) => Err(anyhow::anyhow!("cannot write the output: {err}")),
    }
}

/// Print `value` as pretty JSON and a newline.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print(|out| {
        serde_json::to_writer_pretty(&mut *out, value)?;
        out.write_all(b"\n")
    })
}

/// Print `text` as it is.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    print(|out| out.write_all(text.as_bytes()))
}

/// Whether an error is only stdout's reader going away.
pub fn is_closed(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Closed>().is_some()
}
