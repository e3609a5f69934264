//! A scan's output with a resume file: each block's records held until the block is
//! done, so that a killed scan leaves a block's records whole or not at all (the order
//! of the resume file and the records is [`ResumeState`](super::ResumeState)'s).
//!
//! [`HeldOutput`] is the output; its [`writer`](HeldOutput::writer) is what a renderer
//! writes to, and [`scan_to`](super::scan_to) tells it which block the writes are of,
//! when a block is done and when the resume file records it. Blocks in flight together
//! interleave their events: each block's bytes gather apart from the others'.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::rc::Rc;

use super::OutputFile;

/// Standard output, when it is a regular file (its size is what the resume file
/// records); `None` for a pipe, a terminal or anything else.
pub fn stdout_file() -> Option<File> {
    use std::os::fd::AsFd;
    let fd = io::stdout().as_fd().try_clone_to_owned().ok()?;
    let f = File::from(fd);
    let meta = f.metadata().ok()?;
    meta.file_type().is_file().then_some(f)
}

struct State {
    inner: Box<dyn Write>,
    /// The output as a file, to tell its size.
    file: Option<File>,
    /// The block the writes are of (`None`: straight through).
    block: Option<u64>,
    blocks: HashMap<u64, Vec<u8>>,
    /// A finished block's records, waiting for the resume file.
    ready: Vec<u8>,
}

/// The output of a scan: written straight through, or, inside a block, held until the
/// block is done.
pub struct HeldOutput {
    state: Rc<RefCell<State>>,
}

/// What a renderer writes to: the bytes go to the block of the moment, or straight
/// through outside any block.
pub struct HeldWriter {
    state: Rc<RefCell<State>>,
}

impl HeldOutput {
    /// An output writing to `inner`; `file` is the regular file that `inner` writes to,
    /// if it is one (see [`stdout_file`]).
    pub fn new(inner: Box<dyn Write>, file: Option<File>) -> HeldOutput {
        HeldOutput {
            state: Rc::new(RefCell::new(State {
                inner,
                file,
                block: None,
                blocks: HashMap::new(),
                ready: Vec::new(),
            })),
        }
    }

    /// The output file's identity and size now, if the output is a regular file.
    pub fn file(&self) -> Option<OutputFile> {
        use std::os::unix::fs::MetadataExt;
        let s = self.state.borrow();
        let m = s.file.as_ref()?.metadata().ok()?;
        Some(OutputFile {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
        })
    }

    /// The writer for a renderer (any number of them share this output).
    pub fn writer(&self) -> HeldWriter {
        HeldWriter {
            state: self.state.clone(),
        }
    }

    /// The writes that follow are of block `b` (`None`: straight through).
    pub fn in_block(&self, b: Option<u64>) {
        self.state.borrow_mut().block = b;
    }

    /// Block `index` is done: returns the output file's size now and after the block's
    /// records, which wait for [`HeldOutput::checkpoint`]; or, when the output is not a
    /// regular file, writes them now and returns `None`.
    pub fn block_done(&self, index: u64) -> io::Result<Option<(u64, u64)>> {
        let mut s = self.state.borrow_mut();
        let buf = s.blocks.remove(&index).unwrap_or_default();
        s.inner.flush()?;
        let Some(f) = &s.file else {
            s.inner.write_all(&buf)?;
            s.inner.flush()?;
            return Ok(None);
        };
        let before = f.metadata()?.len();
        let after = before + buf.len() as u64;
        s.ready = buf;
        Ok(Some((before, after)))
    }

    /// Drops block `index`'s records (the scan cannot record it).
    pub fn discard(&self, index: u64) {
        self.state.borrow_mut().blocks.remove(&index);
    }

    /// The resume file records the block of the last [`HeldOutput::block_done`]: its
    /// records go out.
    pub fn checkpoint(&self) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        let buf = std::mem::take(&mut s.ready);
        s.inner.write_all(&buf)?;
        s.inner.flush()
    }

    /// Writes out what went straight through.
    pub fn flush(&self) -> io::Result<()> {
        self.state.borrow_mut().inner.flush()
    }
}

impl Write for HeldWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.state.borrow_mut();
        match s.block {
            Some(b) => {
                s.blocks.entry(b).or_default().extend_from_slice(buf);
                Ok(buf.len())
            }
            None => s.inner.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        match s.block {
            Some(_) => Ok(()),
            None => s.inner.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test reads, counting its writes.
    #[derive(Clone, Default)]
    struct Sink(Rc<RefCell<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut s = self.0.borrow_mut();
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().0.clone()).unwrap()
        }
        fn writes(&self) -> usize {
            self.0.borrow().1
        }
    }

    fn put(out: &HeldOutput, block: u64, text: &str) {
        out.in_block(Some(block));
        let mut w = out.writer();
        w.write_all(text.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    #[test]
    fn interleaved_blocks_come_out_whole_in_block_done_order() {
        let sink = Sink::default();
        let out = HeldOutput::new(Box::new(sink.clone()), None);
        out.writer().write_all(b"header\n").unwrap();
        put(&out, 0, "a1\n");
        put(&out, 1, "b1\n");
        put(&out, 2, "c1\n");
        put(&out, 0, "a2\n");
        put(&out, 1, "b2\n");
        // Nothing of a block before it is done.
        assert_eq!(sink.text(), "header\n");
        // A non-file output gets the block's records at its end, before any checkpoint.
        assert_eq!(out.block_done(1).unwrap(), None);
        assert_eq!(sink.text(), "header\nb1\nb2\n");
        put(&out, 2, "c2\n");
        put(&out, 0, "a3\n");
        out.checkpoint().unwrap();
        assert_eq!(out.block_done(2).unwrap(), None);
        assert_eq!(out.block_done(0).unwrap(), None);
        out.in_block(None);
        out.writer().write_all(b"summary\n").unwrap();
        assert_eq!(sink.text(), "header\nb1\nb2\nc1\nc2\na1\na2\na3\nsummary\n");
    }

    #[test]
    fn a_file_output_gets_a_block_at_its_checkpoint_once() {
        let dir = std::env::temp_dir().join(format!("held-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        std::fs::write(&path, "earlier\n").unwrap();
        let open = || std::fs::OpenOptions::new().append(true).open(&path);
        let out = HeldOutput::new(Box::new(open().unwrap()), Some(open().unwrap()));
        let id = out.file().unwrap();
        assert_eq!(id.size, 8);
        put(&out, 3, "x1\n");
        put(&out, 4, "y1\n");
        put(&out, 3, "x2\n");
        // Done: where its records go, and they wait for the resume file.
        assert_eq!(out.block_done(3).unwrap(), Some((8, 14)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier\n");
        out.checkpoint().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier\nx1\nx2\n");
        // A checkpoint writes the block once.
        out.checkpoint().unwrap();
        assert_eq!(out.file().unwrap().size, 14);
        assert_eq!(out.block_done(4).unwrap(), Some((14, 17)));
        out.checkpoint().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier\nx1\nx2\ny1\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_block_goes_out_in_one_write() {
        let sink = Sink::default();
        let out = HeldOutput::new(Box::new(sink.clone()), None);
        for i in 0..50 {
            put(&out, 7, &format!("r{i}\n"));
        }
        out.block_done(7).unwrap();
        assert_eq!(sink.writes(), 1);
        // A block with nothing in it (its hosts all down, or none listed) writes nothing.
        out.block_done(8).unwrap();
        out.checkpoint().unwrap();
        assert_eq!(sink.text().lines().count(), 50);
    }
}
