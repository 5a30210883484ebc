//! The one table the suite prints: a row per measurement, with its reference and its target.

/// One line of the table. Every row compares a result with a reference or a target, so every row
/// has a verdict.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// What was measured, with its size (`End-to-end ingest, PostgreSQL: 20 symbols x ...`).
    pub(crate) measurement: String,
    /// The measured figure, with whatever helps read it.
    pub(crate) result: String,
    /// What the result is compared with (`-` when only a target applies).
    pub(crate) reference: String,
    /// The ratio or figure that is judged, and the target it is judged against.
    pub(crate) target: String,
    /// Whether the target is met.
    pub(crate) pass: bool,
}

impl Row {
    pub(crate) fn new(
        measurement: impl Into<String>,
        result: impl Into<String>,
        reference: impl Into<String>,
        target: impl Into<String>,
        pass: bool,
    ) -> Self {
        Self {
            measurement: measurement.into(),
            result: result.into(),
            reference: reference.into(),
            target: target.into(),
            pass,
        }
    }

    /// A measurement that could not be taken: it fails, and says why.
    pub(crate) fn failed(measurement: impl Into<String>, error: &anyhow::Error) -> Self {
        Self::new(measurement, format!("error: {error:#}"), "-", "-", false)
    }
}

/// The header line (the machine) and the table as markdown on standard output.
pub(crate) fn print(header: &str, rows: &[Row]) {
    println!();
    println!("{header}");
    println!();
    println!("| measurement | result | reference | ratio / target | verdict |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            cell(&r.measurement),
            cell(&r.result),
            cell(&r.reference),
            cell(&r.target),
            if r.pass { "met" } else { "**NOT met**" }
        );
    }
    let failed = rows.iter().filter(|r| !r.pass).count();
    println!();
    println!(
        "{} of {} targets met{}",
        rows.len() - failed,
        rows.len(),
        if failed == 0 {
            "."
        } else {
            "; see the rows marked NOT met."
        }
    );
}

/// A table cell: one line, no column separators.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate as a whole number with thousands separators.
pub(crate) fn per_second(n: u64, secs: f64) -> String {
    if secs > 0.0 {
        thousands((n as f64 / secs).round() as u64)
    } else {
        "-".to_owned()
    }
}
