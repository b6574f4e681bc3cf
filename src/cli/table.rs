//! The one table printer of every listing (`users list`, `users link
//! list`, `vm list`): each column padded to its width, left or right, and
//! followed by its own gap; the last column is not padded.

use std::fmt::{Display, Write};

#[derive(Debug, Clone, Copy)]
enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    header: &'static str,
    width: usize,
    align: Align,
    /// What separates it from the next column.
    gap: &'static str,
}

impl Column {
    pub const fn left(header: &'static str, width: usize, gap: &'static str) -> Self {
        Self {
            header,
            width,
            align: Align::Left,
            gap,
        }
    }

    pub const fn right(header: &'static str, width: usize, gap: &'static str) -> Self {
        Self {
            header,
            width,
            align: Align::Right,
            gap,
        }
    }

    /// The last column: as wide as what it holds.
    pub const fn last(header: &'static str) -> Self {
        Self::left(header, 0, "")
    }
}

pub struct Table(pub &'static [Column]);

impl Table {
    pub fn header(&self) -> String {
        let headers: Vec<&dyn Display> = self.0.iter().map(|c| &c.header as &dyn Display).collect();
        self.row(&headers)
    }

    /// One line of `cells`, one per column. A cell is padded as its own
    /// `Display` pads (the `{:<w$}` of a `format!`).
    pub fn row(&self, cells: &[&dyn Display]) -> String {
        assert_eq!(cells.len(), self.0.len(), "a cell for every column");
        let mut line = String::new();
        for (column, cell) in self.0.iter().zip(cells) {
            let width = column.width;
            let written = match column.align {
                Align::Left => write!(line, "{cell:<width$}{}", column.gap),
                Align::Right => write!(line, "{cell:>width$}{}", column.gap),
            };
            written.expect("writing to a String cannot fail");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::{Column, Table};

    const T: Table = Table(&[
        Column::right("ID", 4, "  "),
        Column::left("LABEL", 6, " "),
        Column::last("CREATED"),
    ]);

    #[test]
    fn columns_are_padded_to_their_width_and_the_last_is_not() {
        let table: &[(&[&dyn std::fmt::Display], &str)] = &[
            (&[&"ID", &"LABEL", &"CREATED"], "  ID  LABEL  CREATED"),
            (&[&7, &"ab", &"today"], "   7  ab     today"),
            (&[&12345, &"longer label", &""], "12345  longer label "),
        ];
        assert_eq!(T.header(), table[0].1);
        for (cells, expected) in table {
            assert_eq!(T.row(cells), *expected);
        }
    }

    #[test]
    fn a_cell_pads_as_its_own_display_does() {
        // A `Display` that writes with `write_str` ignores the width, as
        // it does in a `format!`: the listings print as they always did.
        struct Unpadded;
        impl std::fmt::Display for Unpadded {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("x")
            }
        }
        assert_eq!(
            T.row(&[&1, &Unpadded, &"z"]),
            format!("   1  {:<6} z", Unpadded)
        );
        assert_eq!(T.row(&[&1, &Unpadded, &"z"]), "   1  x z");
    }
}
