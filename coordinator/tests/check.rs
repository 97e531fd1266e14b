//! `coordinator check` through the real binary.

use std::process::Command;

fn check(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .arg("check")
        .arg("--task")
        .arg(path)
        .output()
        .expect("run coordinator")
}

#[test]
fn the_demo_task_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/heart/task.toml");
    let out = check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("4 members, 12 features"), "{stdout}");
}

#[test]
fn a_broken_task_names_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(
        &path,
        "[task]\nid = \"t\"\nmembers = [\"a\"]\nmodel = \"logistic\"\nfeatures = [\"x\"]\ntarget = \"y\"\n[training]\nlearning_rate = 0.0\n",
    )
    .unwrap();
    let out = check(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("task.toml"), "{err}");
    assert!(err.contains("training.learning_rate"), "{err}");
}
