//! Finding the code a model wrote in its response.

/// Fence tags whose blocks run. Untagged blocks run too.
const RUNNABLE: &[&str] = &["rhai", "repl", "rust"];

/// The code blocks of a response, split by whether they run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Blocks {
    /// Code of runnable blocks, in order.
    pub code: Vec<String>,
    /// Tags of blocks that do not run (`python`, `json`, ...), in order.
    pub skipped: Vec<String>,
}

/// Extracts fenced code blocks (```` ``` ````, optionally indented, with an
/// optional info string). An unclosed final fence runs to the end of the
/// response, since models cut off by a token limit often leave one open.
///
/// ```
/// let b = rlm::driver::extract_blocks("Let me look.\n```rhai\nprint(1);\n```\n```python\nx = 1\n```\n");
/// assert_eq!(b.code, vec!["print(1);".to_string()]);
/// assert_eq!(b.skipped, vec!["python".to_string()]);
/// ```
pub fn extract_blocks(response: &str) -> Blocks {
    let mut blocks = Blocks::default();
    let mut open: Option<(String, usize, Vec<&str>)> = None; // (tag, fence length, lines)
    for line in response.lines() {
        let trimmed = line.trim_start();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        match open.as_mut() {
            None if ticks >= 3 => {
                let tag = trimmed[ticks..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                open = Some((tag, ticks, Vec::new()));
            }
            None => {}
            Some((_, fence, _)) if ticks >= *fence && trimmed[ticks..].trim().is_empty() => {
                if let Some((tag, _, lines)) = open.take() {
                    push(&mut blocks, tag, &lines);
                }
            }
            Some((_, _, lines)) => lines.push(line),
        }
    }
    if let Some((tag, _, lines)) = open {
        push(&mut blocks, tag, &lines);
    }
    blocks
}

fn push(blocks: &mut Blocks, tag: String, lines: &[&str]) {
    let code = lines.join("\n");
    if code.trim().is_empty() {
        return;
    }
    if tag.is_empty() || RUNNABLE.contains(&tag.as_str()) {
        blocks.code.push(code);
    } else {
        blocks.skipped.push(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_untagged_indented_and_unclosed() {
        let r = "a\n```\nlet x = 1;\n```\n  ```repl\n  print(x);\n  ```\n```rust\nsubmit(x);\n```\n```json\n{}\n```\n```rhai\nprint(\"cut off\")";
        let b = extract_blocks(r);
        assert_eq!(
            b.code,
            vec![
                "let x = 1;",
                "  print(x);",
                "submit(x);",
                "print(\"cut off\")"
            ]
        );
        assert_eq!(b.skipped, vec!["json"]);
    }

    #[test]
    fn longer_fences_may_contain_shorter_ones_and_empty_blocks_are_ignored() {
        let r = "````rhai\nlet s = \"```\";\n````\n```rhai\n\n```";
        assert_eq!(extract_blocks(r).code, vec!["let s = \"```\";"]);
        assert_eq!(extract_blocks("no code here"), Blocks::default());
        assert_eq!(extract_blocks(""), Blocks::default());
    }
}
