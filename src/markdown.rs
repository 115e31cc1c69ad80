//! Text for the reference pages generated from the code (configuration, command line, HTTP
//! API): one place that knows how a doc comment goes into a Markdown table.

/// A doc comment as one table cell: on one line, its `|` escaped.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace("\n\n", " ").replace('\n', " ")
}

/// A doc comment as a sentence: clap drops the full stop that ends a one-sentence doc
/// comment, and the pages put it back.
pub fn sentence(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.ends_with(['.', '!', '?', ')', '`']) { s.to_string() } else { format!("{s}.") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_one_line_with_its_bars_escaped() {
        assert_eq!(cell("a | b\n\nc\nd"), "a \\| b c d");
    }

    #[test]
    fn a_sentence_ends_with_a_full_stop_once() {
        assert_eq!(sentence(" Log format "), "Log format.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
    }
}
