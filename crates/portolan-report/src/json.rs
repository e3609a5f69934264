//! JSON documents and JSON Lines streams.

use std::cell::RefCell;
use std::io;

use serde::Serialize;

/// A line's buffer kept between lines up to this size.
const KEEP: usize = 64 << 10;

thread_local! {
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes one value as a pretty JSON document and a newline.
pub fn document<T: Serialize + ?Sized>(w: &mut dyn io::Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// Writes one value as one line of JSON Lines.
pub fn line<T: Serialize + ?Sized>(w: &mut dyn io::Write, value: &T) -> io::Result<()> {
    // Built whole, then written with one call: the pieces of a record written one by one
    // through `dyn Write` cost more than the record (a /16's scan spent half its user
    // time there). A line is never written in part.
    LINE.with(|b| {
        let mut buf = b.take();
        buf.clear();
        let r = serde_json::to_writer(&mut buf, value).map_err(io::Error::other);
        buf.push(b'\n');
        let r = r.and_then(|()| w.write_all(&buf));
        if buf.capacity() <= KEEP {
            *b.borrow_mut() = buf;
        }
        r
    })
}

/// A JSON Lines record with a `type` tag first: `{"type":"port",...}`.
#[derive(Serialize)]
pub struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(flatten)]
    pub value: &'a T,
}

/// Writes `value` as a JSON line tagged with `kind`.
pub fn tagged<T: Serialize>(w: &mut dyn io::Write, kind: &str, value: &T) -> io::Result<()> {
    line(w, &Tagged { kind, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_lines_put_the_type_first() {
        #[derive(Serialize)]
        struct P {
            port: u16,
        }
        let mut buf = Vec::new();
        tagged(&mut buf, "port", &P { port: 22 }).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"type\":\"port\",\"port\":22}\n"
        );
    }

    #[test]
    fn each_line_is_written_whole_with_one_call_and_nothing_of_the_last() {
        struct Calls(Vec<Vec<u8>>);
        impl io::Write for Calls {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.push(b.to_vec());
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = Calls(Vec::new());
        line(
            &mut w,
            &serde_json::json!({"host": "198.18.0.1", "ports": [22, 80]}),
        )
        .unwrap();
        line(&mut w, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(
            w.0,
            vec![
                b"{\"host\":\"198.18.0.1\",\"ports\":[22,80]}\n".to_vec(),
                b"{\"a\":1}\n".to_vec()
            ]
        );
    }
}
