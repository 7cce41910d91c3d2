//! Regex search: matches, grep, counting and splitting.

use std::sync::Arc;

use crate::error::Result;
use crate::text::{strip_terminator, Text};

use super::class_run::last_bytes;
use super::crossing::{Crossing, Hit, Sink, Step};
use super::pattern::{is_word_byte, Pattern, PatternOptions};

/// Anything that names a regex: a `&str` (default options), a `&str` with
/// options, or an already compiled [`Pattern`].
pub trait IntoPattern {
    /// Compiles (or fetches from the cache) the pattern.
    fn into_pattern(self) -> Result<Arc<Pattern>>;
}

impl IntoPattern for &str {
    fn into_pattern(self) -> Result<Arc<Pattern>> {
        Pattern::new(self, PatternOptions::default())
    }
}

impl IntoPattern for (&str, PatternOptions) {
    fn into_pattern(self) -> Result<Arc<Pattern>> {
        Pattern::new(self.0, self.1)
    }
}

impl IntoPattern for &Arc<Pattern> {
    fn into_pattern(self) -> Result<Arc<Pattern>> {
        Ok(self.clone())
    }
}

/// One regex match.
#[derive(Debug, Clone)]
pub struct Match {
    /// View-relative byte offset of the match.
    pub start: usize,
    /// View-relative byte offset one past the match.
    pub end: usize,
    /// 1-based line of the match's first byte.
    pub line: usize,
    /// The matched text.
    pub text: Text,
    /// Capture groups 1.., `None` where a group did not take part.
    pub groups: Vec<Option<Text>>,
}

/// Options for [`Text::grep`].
#[derive(Debug, Clone, Default)]
pub struct GrepOptions {
    /// Lines of context before each hit.
    pub before: usize,
    /// Lines of context after each hit.
    pub after: usize,
    /// At most this many hits (`None`: all).
    pub max: Option<usize>,
    /// Match regardless of case.
    pub case_insensitive: bool,
}

/// One line matched by [`Text::grep`].
#[derive(Debug, Clone)]
pub struct GrepHit {
    /// 1-based line number within the searched view.
    pub line: usize,
    /// View-relative byte offset where the line starts.
    pub start: usize,
    /// The line, without its terminator.
    pub text: Text,
    /// The line with its requested context lines, terminators included.
    pub context: Text,
}

struct RawMatch {
    start: usize,
    end: usize,
    groups: Vec<Option<(usize, usize)>>,
}

impl Text {
    /// Up to `limit` leftmost-first, non-overlapping regex matches, in order,
    /// with line numbers and capture groups.
    ///
    /// Cost: O(n) over the text, parallel, also for a pattern that can
    /// match a newline (exact: such a match may run across lines and
    /// documents); plus a line-number lookup per match.
    ///
    /// ```
    /// let t = rlm::Text::from("id=7\nid=42\n");
    /// let m = t.matches(r"id=(\d+)", 10)?;
    /// assert_eq!(m[1].line, 2);
    /// assert_eq!(m[1].groups[0].as_ref().unwrap().to_string(), "42");
    /// # Ok::<(), rlm::Error>(())
    /// ```
    pub fn matches(&self, pattern: impl IntoPattern, limit: usize) -> Result<Vec<Match>> {
        let pattern = pattern.into_pattern()?;
        if pattern.crosses_lines && self.interrupt.is_some() {
            return self.detached(move |t| t.matches(&pattern, limit));
        }
        let re = &pattern.regex;
        let with_groups = re.captures_len() > 1;
        if let Some(raw) = self.crossing_matches(&pattern, limit, with_groups)? {
            return Ok(self.finish_matches(raw));
        }
        let raw = self.search_units(!pattern.crosses_lines, limit, |unit, limit| {
            let at = |i: usize| unit.start + i;
            if with_groups {
                re.captures_iter(unit.bytes)
                    .filter_map(|caps| {
                        let m = caps.get(0).filter(|m| unit.owns(m.start(), m.end()))?;
                        let groups = (1..caps.len())
                            .map(|g| caps.get(g).map(|c| (at(c.start()), at(c.end()))))
                            .collect();
                        Some(RawMatch {
                            start: at(m.start()),
                            end: at(m.end()),
                            groups,
                        })
                    })
                    .take(limit)
                    .collect()
            } else {
                re.find_iter(unit.bytes)
                    .filter(|m| unit.owns(m.start(), m.end()))
                    .take(limit)
                    .map(|m| RawMatch {
                        start: at(m.start()),
                        end: at(m.end()),
                        groups: Vec::new(),
                    })
                    .collect()
            }
        })?;
        Ok(self.finish_matches(raw))
    }

    /// [`Text::matches`] through the exact parallel search of a pattern
    /// that can match a newline; `None` when it does not apply or gave up.
    fn crossing_matches(
        &self,
        pattern: &Pattern,
        limit: usize,
        with_groups: bool,
    ) -> Result<Option<Vec<RawMatch>>> {
        let Some(c) = pattern.crossing.as_deref() else {
            return Ok(None);
        };
        let mut sink = Collect::new(limit);
        if limit > 0 && !self.crossing_search(c, Step::Matches, limit, false, &mut sink)? {
            return Ok(None);
        }
        Ok(Some(
            sink.hits
                .into_iter()
                .map(|(start, end)| RawMatch {
                    start,
                    end,
                    groups: if with_groups {
                        self.crossing_groups(c, start, end)
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        ))
    }

    /// The capture groups of the crossing match `[start, end)` (global),
    /// searched in place when it lies in one piece.
    fn crossing_groups(
        &self,
        c: &Crossing,
        start: usize,
        end: usize,
    ) -> Vec<Option<(usize, usize)>> {
        // A few bytes either side, for look-around.
        let lo = start.saturating_sub(4).max(self.start);
        let hi = end.saturating_add(4).min(self.end);
        let window = self.view(lo, hi);
        let bytes = window.bytes();
        c.groups(&bytes, start - lo, end - lo)
            .into_iter()
            .map(|g| g.map(|(s, e)| (s + lo, e + lo)))
            .collect()
    }

    /// Line numbers and views for raw matches.
    fn finish_matches(&self, raw: Vec<RawMatch>) -> Vec<Match> {
        let lines = self.line_numbers(raw.iter().map(|m| m.start));
        raw.into_iter()
            .zip(lines)
            .map(|(m, line)| Match {
                start: m.start - self.start,
                end: m.end - self.start,
                line,
                text: self.view(m.start, m.end),
                groups: m
                    .groups
                    .into_iter()
                    .map(|g| g.map(|(s, e)| self.view(s, e)))
                    .collect(),
            })
            .collect()
    }

    /// Lines matching `pattern`, grep-style: one hit per line, with optional
    /// context lines.
    ///
    /// A match that spans lines is reported on the line it starts on, and
    /// the scan goes on after the match or after that line, whichever is
    /// later. Cost: O(n) over the text, parallel; stops early at `max`.
    ///
    /// ```
    /// let t = rlm::Text::from("a\nERROR disk\nb\nerror net\n");
    /// let opts = rlm::GrepOptions { case_insensitive: true, ..Default::default() };
    /// let hits = t.grep("error", &opts)?;
    /// assert_eq!(hits.iter().map(|h| h.line).collect::<Vec<_>>(), vec![2, 4]);
    /// assert_eq!(t.line(hits[0].line).unwrap().to_string(), "ERROR disk");
    /// # Ok::<(), rlm::Error>(())
    /// ```
    pub fn grep(&self, pattern: &str, options: &GrepOptions) -> Result<Vec<GrepHit>> {
        let opts = PatternOptions {
            case_insensitive: options.case_insensitive,
            ..PatternOptions::default()
        };
        self.grep_pattern(&Pattern::new(pattern, opts)?, options)
    }

    /// [`Text::grep`] with a compiled pattern; `options.case_insensitive` is
    /// ignored in favour of the pattern's own options.
    pub fn grep_pattern(
        &self,
        pattern: &Arc<Pattern>,
        options: &GrepOptions,
    ) -> Result<Vec<GrepHit>> {
        if pattern.crosses_lines && self.interrupt.is_some() {
            let (pattern, options) = (pattern.clone(), options.clone());
            return self.detached(move |t| t.grep_pattern(&pattern, &options));
        }
        let re = &pattern.regex;
        let limit = options.max.unwrap_or(usize::MAX);
        let view_start = self.start;
        let view_end = self.end;
        if let Some(spans) = self.crossing_grep(pattern, limit)? {
            return Ok(self.finish_grep(spans, options));
        }
        let spans = self.search_units(!pattern.crosses_lines, limit, |unit, limit| {
            let bytes = unit.bytes;
            let mut out = Vec::new();
            let mut pos = 0;
            while out.len() < limit && pos <= bytes.len() {
                let Some(m) = re.find_at(bytes, pos) else {
                    break;
                };
                // No line starts after a final newline: that is the end of the text.
                let at_end = m.start() == bytes.len();
                if at_end && (bytes.last() == Some(&b'\n') || !unit.owns(m.start(), m.end())) {
                    break;
                }
                let ls = memchr::memrchr(b'\n', &bytes[..m.start()]).map_or(0, |i| i + 1);
                let le = memchr::memchr(b'\n', &bytes[m.start()..])
                    .map_or(bytes.len(), |i| m.start() + i + 1);
                // A unit may begin mid-line when the view does; never report
                // bytes outside the view.
                out.push((
                    (unit.start + ls).max(view_start),
                    (unit.start + le).min(view_end),
                ));
                if le == bytes.len() {
                    break;
                }
                pos = le.max(m.end()).max(pos + 1);
            }
            out
        })?;
        Ok(self.finish_grep(spans, options))
    }

    /// [`Text::grep_pattern`] through the exact parallel search; `None`
    /// when it does not apply or gave up. A match that spans several lines
    /// reports the line it starts on, and the scan goes on after the match
    /// (or after that line, if later), as grep's sequential scan does.
    fn crossing_grep(
        &self,
        pattern: &Pattern,
        limit: usize,
    ) -> Result<Option<Vec<(usize, usize)>>> {
        let Some(c) = pattern.crossing.as_deref() else {
            return Ok(None);
        };
        // One more: a match after a final newline is dropped below.
        let mut sink = Collect::new(limit.saturating_add(1));
        if limit > 0
            && !self.crossing_search(c, Step::Lines, limit.saturating_add(1), false, &mut sink)?
        {
            return Ok(None);
        }
        let ends_in_newline =
            self.store.byte_at(self.end.wrapping_sub(1)) == Some(b'\n') && !self.is_empty();
        let starts: Vec<usize> = sink
            .hits
            .into_iter()
            .map(|(s, _)| s)
            .filter(|&s| !(s == self.end && ends_in_newline))
            .take(limit)
            .collect();
        let lines = self.line_numbers(starts.iter().copied());
        Ok(Some(
            lines
                .into_iter()
                .map(|line| {
                    let l = self.lines(line, line);
                    (l.start, l.end)
                })
                .collect(),
        ))
    }

    /// Grep hits for line spans `[start, end)` (global, terminator included).
    fn finish_grep(&self, spans: Vec<(usize, usize)>, options: &GrepOptions) -> Vec<GrepHit> {
        let lines = self.line_numbers(spans.iter().map(|&(s, _)| s));
        spans
            .into_iter()
            .zip(lines)
            .map(|((s, e), line)| GrepHit {
                line,
                start: s - self.start,
                text: self.view(s, strip_terminator(&self.store, s, e)),
                context: if options.before == 0 && options.after == 0 {
                    self.view(s, e)
                } else {
                    self.lines(
                        line.saturating_sub(options.before),
                        line.saturating_add(options.after),
                    )
                },
            })
            .collect()
    }

    /// Number of non-overlapping matches of `pattern`. Cost: O(n), parallel.
    pub fn count_matches(&self, pattern: impl IntoPattern) -> Result<usize> {
        let pattern = pattern.into_pattern()?;
        if let Some(word) = &pattern.bounded_word {
            let finder = memchr::memmem::Finder::new(word);
            return self.count_units(true, |unit| {
                let bytes = unit.bytes;
                finder
                    .find_iter(bytes)
                    .filter(|&i| {
                        let before = i.checked_sub(1).and_then(|j| bytes.get(j));
                        let after = bytes.get(i + word.len());
                        !before.is_some_and(|&b| is_word_byte(b))
                            && !after.is_some_and(|&b| is_word_byte(b))
                    })
                    .count()
            });
        }
        if let Some(run) = &pattern.class_run {
            let pieces: Vec<(usize, &[u8])> = self.pieces().collect();
            return self.count_units(true, |unit| {
                let earlier = pieces.partition_point(|&(start, _)| start < unit.start);
                let before = pieces[..earlier]
                    .iter()
                    .rev()
                    .map(|&(start, bytes)| &bytes[..(unit.start - start).min(bytes.len())]);
                let mut tail = [0u8; 4];
                let n = last_bytes(before, &mut tail);
                run.count(&tail[4 - n..], unit.bytes)
            });
        }
        if pattern.crosses_lines {
            return self.detached(move |t| {
                if let Some(c) = pattern.crossing.as_deref() {
                    let mut sink = Count(0);
                    if t.crossing_search(c, Step::Matches, usize::MAX, true, &mut sink)? {
                        return Ok(sink.0);
                    }
                }
                t.count_units(false, |unit| pattern.regex.find_iter(unit.bytes).count())
            });
        }
        let re = &pattern.regex;
        self.count_units(true, |unit| {
            re.find_iter(unit.bytes)
                .filter(|m| unit.owns(m.start(), m.end()))
                .count()
        })
    }

    /// Whether `pattern` matches anywhere. Cost: O(n) worst case, parallel,
    /// stops at the first match.
    pub fn is_match(&self, pattern: impl IntoPattern) -> Result<bool> {
        let pattern = pattern.into_pattern()?;
        if pattern.crosses_lines {
            return self.detached(move |t| {
                if let Some(c) = pattern.crossing.as_deref() {
                    let mut sink = Collect::new(1);
                    if t.crossing_search(c, Step::Matches, 1, false, &mut sink)? {
                        return Ok(!sink.hits.is_empty());
                    }
                }
                t.any_unit(false, |unit| pattern.regex.is_match(unit.bytes))
            });
        }
        let re = &pattern.regex;
        self.any_unit(true, |unit| re.is_match(unit.bytes))
    }

    /// The pieces between matches of `pattern`, separators dropped. Empty
    /// pieces and empty separators are skipped, so the result never holds
    /// `""`. Cost: O(n), parallel.
    pub fn split_on(&self, pattern: impl IntoPattern) -> Result<Vec<Text>> {
        Ok(self
            .split_on_at_most(pattern, usize::MAX - 1)?
            .unwrap_or_default())
    }

    /// Like [`Text::split_on`], but `None` as soon as the split could make
    /// more than `limit` pieces (more than `limit` separators), so a caller
    /// with a size limit never holds the whole split of a huge text.
    pub fn split_on_at_most(
        &self,
        pattern: impl IntoPattern,
        limit: usize,
    ) -> Result<Option<Vec<Text>>> {
        let pattern = pattern.into_pattern()?;
        if pattern.crosses_lines && self.interrupt.is_some() {
            let interrupt = self.interrupt.clone();
            let pieces = self.detached(move |t| t.split_on_at_most(&pattern, limit))?;
            // The pieces were cut from an uninterruptible copy of the view.
            return Ok(pieces.map(|pieces| {
                pieces
                    .into_iter()
                    .map(|p| p.with_interrupt(interrupt.clone()))
                    .collect()
            }));
        }
        if let Some(pieces) = self.crossing_split(&pattern, limit)? {
            return Ok(pieces);
        }
        let re = &pattern.regex;
        // Touching separators are merged as they are found, so that the
        // count of separators is the count of pieces (within one a unit):
        // `split_on("x")` of a run of a million x's is one separator.
        let seps = self.search_units(
            !pattern.crosses_lines,
            limit.saturating_add(1),
            |unit, left| {
                let mut spans: Vec<(usize, usize)> = Vec::new();
                for m in re.find_iter(unit.bytes).filter(|m| !m.is_empty()) {
                    let (s, e) = (unit.start + m.start(), unit.start + m.end());
                    let full = spans.len() == left;
                    match spans.last_mut() {
                        Some(last) if last.1 == s => last.1 = e,
                        _ if full => break,
                        _ => spans.push((s, e)),
                    }
                }
                spans
            },
        )?;
        Ok(self.pieces_between(seps, limit))
    }

    /// [`Text::split_on_at_most`] through the exact parallel search;
    /// `None` when it does not apply or gave up.
    #[allow(clippy::type_complexity)]
    fn crossing_split(&self, pattern: &Pattern, limit: usize) -> Result<Option<Option<Vec<Text>>>> {
        let Some(c) = pattern.crossing.as_deref() else {
            return Ok(None);
        };
        let mut sink = Separators {
            spans: Vec::new(),
            cap: limit.saturating_add(1),
        };
        if !self.crossing_search(c, Step::Matches, usize::MAX, false, &mut sink)? {
            return Ok(None);
        }
        Ok(Some(self.pieces_between(sink.spans, limit)))
    }

    /// The pieces between separators `seps` (global, sorted, disjoint), or
    /// `None` when there would be more than `limit`.
    fn pieces_between(&self, seps: Vec<(usize, usize)>, limit: usize) -> Option<Vec<Text>> {
        if seps.len() > limit {
            return None;
        }
        let mut pieces = Vec::with_capacity(seps.len() + 1);
        let mut at = self.start;
        for (s, e) in seps
            .into_iter()
            .chain(std::iter::once((self.end, self.end)))
        {
            if s > at {
                pieces.push(self.view(at, s));
            }
            at = e;
        }
        (pieces.len() <= limit).then_some(pieces)
    }
}

/// Collects up to `limit` matches of a crossing search.
struct Collect {
    hits: Vec<(usize, usize)>,
    limit: usize,
}

impl Collect {
    fn new(limit: usize) -> Collect {
        Collect {
            hits: Vec::new(),
            limit,
        }
    }
}

impl Sink for Collect {
    fn hit(&mut self, hit: Hit) -> bool {
        if self.hits.len() < self.limit {
            self.hits.push((hit.start, hit.end));
        }
        self.hits.len() < self.limit
    }

    fn more(&mut self, _: usize) -> bool {
        // Only counting searches report uncollected matches.
        true
    }
}

/// Counts the matches of a crossing search.
struct Count(usize);

impl Sink for Count {
    fn hit(&mut self, _: Hit) -> bool {
        self.0 += 1;
        true
    }

    fn more(&mut self, n: usize) -> bool {
        self.0 += n;
        true
    }
}

/// The separators of a split: non-empty matches, touching ones merged, at
/// most `cap` of them.
struct Separators {
    spans: Vec<(usize, usize)>,
    cap: usize,
}

impl Sink for Separators {
    fn hit(&mut self, hit: Hit) -> bool {
        if hit.start == hit.end {
            return true;
        }
        match self.spans.last_mut() {
            Some(last) if last.1 == hit.start => last.1 = hit.end,
            _ => self.spans.push((hit.start, hit.end)),
        }
        self.spans.len() <= self.cap
    }

    fn more(&mut self, _: usize) -> bool {
        true
    }
}
