//! `postern completions` and `postern manpages`: documentation generated from the clap
//! definitions, so the help text, the man pages and Tab completion never disagree.
//!
//! postern.yml(5) is rendered from `dist/postern.example.yml`, compiled in: the example is the one
//! place the keys, their defaults and their comments are written down.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::exit::{self, Failure};

/// The output directory cannot be written (`EX_CANTCREAT`).
const CANT_CREATE: u8 = 73;

/// The commented example configuration, the source of postern.yml(5).
const EXAMPLE_CONFIG: &str = include_str!("../../../../dist/postern.example.yml");

/// Prints the completion script for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut crate::Cli::command(), "postern", &mut script);
    exit::print_bytes(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `postern.1`, `postern-<subcommand>.1` … and `postern.yml.5` into `dir`.
pub fn manpages(dir: &Path) -> Result<ExitCode, Failure> {
    let failed = |e: std::io::Error| {
        Failure::new(
            CANT_CREATE,
            anyhow::anyhow!("cannot write man pages to {}: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    clap_mangen::generate_to(crate::Cli::command(), dir).map_err(failed)?;
    let mut page = std::fs::File::create(dir.join("postern.yml.5")).map_err(failed)?;
    page.write_all(config_page(EXAMPLE_CONFIG).as_bytes())
        .map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}

/// postern.yml(5) in roff: the example's opening comment is the description, then each
/// top-level section of the example, verbatim, under its own heading.
fn config_page(example: &str) -> String {
    let mut page = String::new();
    page.push_str(&format!(
        ".TH POSTERN.YML 5 \"\" \"postern {}\" \"File Formats\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    page.push_str(".SH NAME\npostern.yml \\- configuration of postern\n");
    page.push_str(".SH SYNOPSIS\n/etc/postern/postern.yml\n");
    page.push_str(".SH DESCRIPTION\n");
    let mut lines = example.lines().peekable();
    // The opening comment, up to the first key: paragraphs separated by bare `#` lines.
    while let Some(line) = lines.next_if(|line| line.starts_with('#') || line.is_empty()) {
        let text = line.trim_start_matches('#').trim();
        if text.is_empty() {
            page.push_str(".PP\n");
        } else {
            page.push_str(&escape_text(text));
            page.push('\n');
        }
    }
    page.push_str(".SH KEYS\n");
    page.push_str("Every key with its default or an example value, as in the example file.\n");
    let mut open = false;
    for line in lines {
        let top_level = !line.starts_with([' ', '#']) && !line.is_empty();
        if top_level {
            if open {
                page.push_str(".fi\n");
            }
            let name = line.split(':').next().unwrap_or(line);
            page.push_str(&format!(".SS {}\n.nf\n", escape_text(name)));
            open = true;
        }
        page.push_str(&escape_literal(line));
        page.push('\n');
    }
    if open {
        page.push_str(".fi\n");
    }
    page.push_str(".SH SEE ALSO\npostern(1), postern\\-check(1), postern\\-serve(1)\n");
    page
}

/// Text for a filled paragraph: backslashes and hyphens escaped, a leading dot or quote
/// neutralised so it is not read as a request.
fn escape_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// A line of a `.nf` block: as `escape_text`, and an empty line kept as one.
fn escape_literal(line: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        escape_text(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_page_has_every_section_of_the_example() {
        let page = config_page(EXAMPLE_CONFIG);
        for section in ["incoming_email", "store", "limits", "log"] {
            assert!(page.contains(&format!(".SS {section}\n")), "{section}");
        }
        assert!(page.contains("max_message_bytes: 52428800"));
        // Every literal block is closed.
        assert_eq!(page.matches(".nf\n").count(), page.matches(".fi\n").count());
    }

    #[test]
    fn roff_requests_in_text_are_neutralised() {
        assert_eq!(escape_text(".SH x"), "\\&.SH x");
        assert_eq!(escape_text("a\\b-c"), "a\\eb\\-c");
    }
}
