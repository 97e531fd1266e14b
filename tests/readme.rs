//! The README stays true to the code: every command it shows for `node`,
//! `coordinator`, `medfed-certs` and `medfed-audit` is accepted by the real
//! binary (subcommands, flags and flag values), the two commands a newcomer
//! runs are the ones CI runs, and every file it links to exists.
//!
//! A command is checked by running it with `--help` appended: clap parses
//! every argument before it (an unknown subcommand or flag, or a value that
//! does not parse, is an error with exit status 2) and then prints the help
//! instead of running anything.

use std::process::Command;

use medfed::{bin, repo_root};

const TOOLS: [&str; 4] = ["node", "coordinator", "medfed-certs", "medfed-audit"];

/// The shell code blocks of the README, each as its logical lines
/// (continuations joined, comments dropped).
fn shell_commands(readme: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in readme.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && trimmed == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let code = strip_comment(trimmed);
        let (start, mut text) = pending.take().unwrap_or((number, String::new()));
        let continued = code.ends_with('\\');
        text.push_str(code.trim_end_matches('\\').trim());
        text.push(' ');
        if continued {
            pending = Some((start, text));
        } else if !text.trim().is_empty() {
            commands.push((start, text.trim().to_owned()));
        }
    }
    commands
}

/// `line` without a trailing `# comment` (a `#` outside quotes that starts
/// a word).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line
}

/// Splits a command line into words the way a POSIX shell would for the
/// simple quoting the README uses.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn every_command_in_the_readme_is_accepted_by_its_tool() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for (line, command) in shell_commands(&readme) {
        let mut args = words(&command);
        // Leading environment assignments (MEDFED_LOG=debug node ...).
        while args
            .first()
            .is_some_and(|w| w.contains('=') && !w.starts_with('-'))
        {
            args.remove(0);
        }
        let Some(tool) = TOOLS
            .iter()
            .find(|t| args.first().map(String::as_str) == Some(**t))
        else {
            continue;
        };
        assert!(
            !command.contains('|') && !command.contains("$("),
            "README.md line {line}: keep tool commands plain (no pipes or substitutions) so \
             they can be checked: {command}"
        );
        let output = Command::new(bin(tool))
            .args(&args[1..])
            .arg("--help")
            .output()
            .expect("run the tool");
        assert!(
            output.status.success(),
            "README.md line {line}: `{command}` is not accepted by {tool}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        *checked.entry(tool).or_default() += 1;
    }
    // The README shows every tool at work for its user.
    for tool in TOOLS {
        assert!(
            checked.get(tool).copied().unwrap_or(0) >= 2,
            "the README shows {tool} fewer than twice: {checked:?}"
        );
    }
}

#[test]
fn the_two_readme_commands_are_the_ones_that_run_the_demo_and_ci() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let commands: Vec<String> = shell_commands(&readme)
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert!(
        commands.iter().any(|c| c == "bash scripts/demo.sh"),
        "the demo command is gone from the README"
    );
    let test_command = "cargo test --workspace --locked";
    assert!(
        commands.iter().any(|c| c == test_command),
        "the test command is gone from the README"
    );
    assert!(root.join("scripts/demo.sh").is_file());
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == test_command),
        ".ci/run does not run the README's test command"
    );
}

#[test]
fn every_file_the_readme_links_to_exists() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut links = 0;
    for (start, _) in readme.match_indices("](") {
        let rest = &readme[start + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = rest[..end].split('#').next().unwrap_or_default();
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        assert!(
            root.join(target).exists(),
            "README.md links to {target}, which does not exist"
        );
        links += 1;
    }
    assert!(
        links >= 3,
        "only {links} local links found; is the parser broken?"
    );
}

#[test]
fn the_parser_joins_continuations_and_drops_comments() {
    let text = "text\n```sh\n# a comment\nnode run --a 1 \\\n  --b 'x y' # trailing\nls\n```\n\
                ```toml\nnode = 1\n```\n";
    let commands = shell_commands(text);
    assert_eq!(
        commands,
        [
            (4, "node run --a 1 --b 'x y'".to_owned()),
            (6, "ls".to_owned())
        ]
    );
    assert_eq!(
        words(&commands[0].1),
        ["node", "run", "--a", "1", "--b", "x y"]
    );
    assert_eq!(words("a '' \"b c\""), ["a", "", "b c"]);
}
