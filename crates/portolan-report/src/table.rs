//! Plain text tables, drawn with `comfy-table`: no borders, columns two spaces apart,
//! widths from the widest cell (IPv6 addresses and long `-sV` cells line up), no trailing
//! spaces, a bold header when colour is on.

use std::io;

use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table as Inner, presets};

/// A table of text cells.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            right: Vec::new(),
        }
    }

    /// Aligns column `i` to the right (numbers).
    pub fn right(mut self, i: usize) -> Self {
        self.right.push(i);
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The table as text, one line per row, each ending in `\n`.
    pub fn render(&self, color: bool) -> String {
        let ncol = self
            .headers
            .len()
            .max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        if ncol == 0 {
            return String::new();
        }
        let mut t = Inner::new();
        t.load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        let pad = |row: &[String]| -> Vec<String> {
            let mut r = row.to_vec();
            r.resize(ncol, String::new());
            r
        };
        if !self.headers.is_empty() {
            t.set_header(pad(&self.headers));
        }
        for row in &self.rows {
            t.add_row(pad(row));
        }
        for (i, col) in t.column_iter_mut().enumerate() {
            col.set_padding((0, if i + 1 < ncol { 2 } else { 0 }));
            col.set_constraint(ColumnConstraint::ContentWidth);
            if self.right.contains(&i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        let mut out = String::new();
        for (n, line) in t.lines().enumerate() {
            let line = line.trim_end();
            if n == 0 && color && !self.headers.is_empty() {
                out.push_str("\x1b[1m");
                out.push_str(line);
                out.push_str("\x1b[0m\n");
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Writes the table.
    pub fn write(&self, w: &mut dyn io::Write, color: bool) -> io::Result<()> {
        w.write_all(self.render(color).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_two_spaces_apart() {
        let mut t = Table::new(["PORT", "NAME"]);
        t.row(["22", "ssh"]);
        t.row(["443", "https"]);
        assert_eq!(t.render(false), "PORT  NAME\n22    ssh\n443   https\n");
    }

    #[test]
    fn long_ipv6_cells_keep_alignment() {
        let mut t = Table::new(["ADDRESS", "PORT", "SERVICE"]);
        t.row([
            "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe",
            "22",
            "ssh OpenSSH 9.2p1 Debian 2+deb12u3",
        ]);
        t.row(["::1", "8080", "http"]);
        let text = t.render(false);
        let cols: Vec<usize> = text
            .lines()
            .map(|l| l.find("22").or(l.find("8080")).unwrap_or(0))
            .collect();
        assert_eq!(cols[1], cols[2]);
        assert!(text.lines().all(|l| l == l.trim_end()));
    }

    #[test]
    fn short_rows_and_colour() {
        let mut t = Table::new(["A", "B", "C"]);
        t.row(["x"]);
        assert_eq!(t.render(true), "\x1b[1mA  B  C\x1b[0m\nx\n");
    }
}
