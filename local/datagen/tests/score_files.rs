//! `score-files` on generated data: every mode sees the same lines, and `full` reads every
//! generated transaction (plain and gzipped) as a row.

use std::process::Command;

use datagen::{Profile, SubjectSpec};
use shared::domain::SubjectId;

fn score_files(mode: &str, dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_score-files"))
        .args(["--mode", mode])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_mode_reads_the_same_lines_and_full_scores_every_row() {
    let dir = std::env::temp_dir().join(format!("score-files-{}", std::process::id()));
    let specs = [
        SubjectSpec::new(SubjectId::parse("shop-a").unwrap(), 300, Profile::Normal),
        SubjectSpec::new(
            SubjectId::parse("shop-b").unwrap(),
            200,
            Profile::Chargebacks,
        ),
    ];
    datagen::write_dir(&dir, &specs, 3).unwrap();

    let split = score_files("split", &dir);
    let parse = score_files("parse", &dir);
    let full = score_files("full", &dir);
    std::fs::remove_dir_all(&dir).unwrap();

    for output in [&split, &parse, &full] {
        assert!(output.contains(" 500 lines in "), "{output}");
    }
    assert!(parse.contains("rows 500, malformed 0"), "{parse}");
    assert!(full.contains("rows 500, malformed 0, score "), "{full}");
    assert!(full.contains("\"order_count\":500.0"), "{full}");
}
