//! Captured cell output, capped to a size a model can read.

/// Collects what a cell prints, keeping only a head and a tail.
///
/// A cell that prints a gigabyte must neither exhaust memory nor flood the
/// model's context, so the buffer stores at most `cap` characters: the first
/// half and a rolling last half. It always knows the true length.
#[derive(Debug)]
pub(crate) struct OutputBuffer {
    cap: usize,
    head: String,
    head_chars: usize,
    tail: String,
    total_chars: usize,
}

impl OutputBuffer {
    pub fn new(cap: usize) -> OutputBuffer {
        OutputBuffer {
            cap,
            head: String::new(),
            head_chars: 0,
            tail: String::new(),
            total_chars: 0,
        }
    }

    pub fn push_line(&mut self, s: &str) {
        self.push(s);
        self.push("\n");
    }

    pub fn push(&mut self, s: &str) {
        let head_cap = self.cap / 2 + self.cap % 2;
        let mut rest = s;
        if self.head_chars < head_cap {
            let room = head_cap - self.head_chars;
            let (taken, n) = take_chars(rest, room);
            self.head.push_str(taken);
            self.head_chars += n;
            self.total_chars += n;
            rest = &rest[taken.len()..];
        }
        if rest.is_empty() {
            return;
        }
        self.total_chars += rest.chars().count();
        self.tail.push_str(rest);
        // Trim the tail lazily, when it is twice what we keep.
        let tail_cap = self.cap / 2;
        if self.tail.len() > 2 * tail_cap.max(64) * 4 {
            self.trim_tail(tail_cap);
        }
    }

    fn trim_tail(&mut self, keep_chars: usize) {
        let n = self.tail.chars().count();
        if n > keep_chars {
            let cut = self
                .tail
                .char_indices()
                .nth(n - keep_chars)
                .map_or(self.tail.len(), |(i, _)| i);
            self.tail.drain(..cut);
        }
    }

    #[cfg(test)]
    pub fn total_chars(&self) -> usize {
        self.total_chars
    }

    /// The output as the caller sees it: whole when it fits, otherwise head,
    /// a marker saying how much was cut, and tail.
    pub fn render(mut self) -> (String, bool) {
        if self.total_chars <= self.cap {
            self.head.push_str(&self.tail);
            return (self.head, false);
        }
        self.trim_tail(self.cap / 2);
        let kept = self.head_chars + self.tail.chars().count();
        let cut = self.total_chars - kept;
        let mut out = self.head;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "[... {cut} characters cut from the middle: output was {} characters, limit {}. Print summaries (counts, top, slices) instead of whole texts ...]\n",
            self.total_chars, self.cap
        ));
        out.push_str(&self.tail);
        (out, true)
    }
}

fn take_chars(s: &str, n: usize) -> (&str, usize) {
    match s.char_indices().nth(n) {
        Some((i, _)) => (&s[..i], n),
        None => (s, s.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut b = OutputBuffer::new(100);
        b.push_line("hello");
        assert_eq!(b.render(), ("hello\n".to_string(), false));
    }

    #[test]
    fn large_output_keeps_head_and_tail_and_states_the_true_length() {
        let mut b = OutputBuffer::new(40);
        for i in 0..10_000 {
            b.push_line(&format!("line {i}"));
        }
        let total = b.total_chars();
        let (out, cut) = b.render();
        assert!(cut);
        assert!(out.starts_with("line 0\nline 1"), "{out}");
        assert!(out.ends_with("line 9999\n"), "{out}");
        assert!(
            out.contains(&format!("output was {total} characters")),
            "{out}"
        );
        assert!(out.len() < 600, "{}", out.len());
    }

    #[test]
    fn multibyte_characters_are_never_split() {
        let mut b = OutputBuffer::new(7);
        b.push(&"é日🦀".repeat(50));
        let (out, cut) = b.render();
        assert!(cut);
        assert!(out.starts_with("é日🦀é"));
    }
}
