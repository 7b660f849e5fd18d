//! The house rules of `src/`, checked: dependencies between areas point one way (the order in
//! `src/lib.rs`'s Layout), and every file opens with a `//!` line saying its role.

use std::path::{Path, PathBuf};

/// The areas from the top down: a file may import only areas after its own in this list. The
/// same order as the Layout section of `src/lib.rs`.
const ORDER: &[&str] = &[
    "app",
    "cluster",
    "http",
    "session",
    "access",
    "metrics",
    "feed",
    "telemetry",
    "protocol",
    "settings",
    "clock",
    "shutdown",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The area of a file under `src/`: its folder, or its own name at the top.
fn area(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// Every `crate::AREA` a file names, code and doc links alike.
fn imports(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .map(|(i, m)| {
            text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// No area imports one above it, so there is no cycle between areas.
#[test]
fn dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank = |area: &str| ORDER.iter().position(|a| *a == area);
    let mut checked = 0;
    for file in &files {
        let from = area(&src, file);
        if from == "lib" || from == "main" {
            continue;
        }
        let from_rank = rank(&from).unwrap_or_else(|| panic!("{from} is not in ORDER"));
        let text = std::fs::read_to_string(file).unwrap();
        for to in imports(&text) {
            if to == from {
                continue;
            }
            let to_rank = rank(&to).unwrap_or_else(|| panic!("{file:?} names crate::{to}"));
            assert!(
                to_rank > from_rank,
                "{} imports crate::{to}, which is above {from}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} imports found");
}

/// Every file in `src/` opens with a `//!` line that says its role.
#[test]
fn every_file_says_its_role() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//! "),
            "{} has no //! line",
            file.display()
        );
    }
}

/// The order above is the one `src/lib.rs` documents.
#[test]
fn order_matches_the_crate_doc() {
    let lib = include_str!("../src/lib.rs");
    let layout = lib.split("# Layout").nth(1).expect("lib.rs has a Layout");
    // The bullet list, where each area has its line.
    let layout = &layout[layout.find("//! - ").expect("a list of areas")..];
    let mut last = 0;
    for area in ORDER {
        let at = layout
            .find(&format!("[`{area}`]"))
            .unwrap_or_else(|| panic!("lib.rs's Layout names [`{area}`]"));
        assert!(at >= last, "{area} is out of order in lib.rs's Layout");
        last = at;
    }
}
