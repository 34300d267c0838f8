//! Reading a test binary's summary line, shared by `cargo xtask` and the guests' init program
//! (both include this file with `#[path]`).

/// The counts of a summary line: the crate's harness (`<suite>: N passed, N failed, N skipped`,
/// see runner.rs) or libtest's (`test result: ok. N passed; N failed; N ignored; ...`, ignored
/// counted as skipped). `None` for any other line.
pub fn parse_counts(line: &str) -> Option<[usize; 3]> {
    let num_before = |s: &str, word: &str| -> Option<usize> {
        let i = s.find(word)?;
        s[..i]
            .trim_end()
            .rsplit([' ', ';', ',', '.', ':'])
            .next()?
            .parse()
            .ok()
    };
    if let Some(rest) = line.strip_prefix("test result: ") {
        return Some([
            num_before(rest, " passed")?,
            num_before(rest, " failed")?,
            num_before(rest, " ignored")?,
        ]);
    }
    // `<suite>: N passed, N failed, N skipped` (the harness in tests/support/runner.rs).
    let (_, rest) = line.split_once(": ")?;
    let p = num_before(rest, " passed,")?;
    let f = num_before(rest, " failed,")?;
    let s = num_before(rest, " skipped")?;
    if rest.trim_end().ends_with("skipped") {
        Some([p, f, s])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::parse_counts;

    #[test]
    fn summary_lines() {
        assert_eq!(
            parse_counts("kernel: 20 passed, 1 failed, 3 skipped"),
            Some([20, 1, 3])
        );
        assert_eq!(
            parse_counts("test result: ok. 5 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s"),
            Some([5, 0, 2])
        );
        assert_eq!(parse_counts("xtask: ok: fmt"), None);
        assert_eq!(parse_counts("random: text passed, failed, skipped"), None);
    }
}
