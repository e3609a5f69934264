//! CSV (RFC 4180), written with the `csv` crate: a header line, then one record per row.

use std::io;

/// A CSV writer over any output.
pub struct Writer<'a> {
    inner: ::csv::Writer<&'a mut dyn io::Write>,
}

impl<'a> Writer<'a> {
    pub fn new(w: &'a mut dyn io::Write) -> Writer<'a> {
        Writer {
            inner: ::csv::WriterBuilder::new()
                .terminator(::csv::Terminator::Any(b'\n'))
                .from_writer(w),
        }
    }

    /// Writes one record.
    pub fn record<S: AsRef<str>>(&mut self, fields: impl IntoIterator<Item = S>) -> io::Result<()> {
        self.inner
            .write_record(fields.into_iter().map(|f| f.as_ref().to_string()))
            .map_err(into_io)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn into_io(e: ::csv::Error) -> io::Error {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        let mut buf = Vec::new();
        {
            let mut w = Writer::new(&mut buf);
            w.record(["a", "b,c", "say \"hi\""]).unwrap();
            w.flush().unwrap();
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
    }
}
