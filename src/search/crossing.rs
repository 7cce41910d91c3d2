//! Exact parallel search for patterns that can match a newline.
//!
//! A pattern such as `\s+`, `[^:]*` or `(?s)BEGIN.*?END` can match across
//! the line-aligned points where the search cuts a view into units, so the
//! units are not independent. They are still searched in parallel, in
//! place, and the result is exactly that of one leftmost-first scan over
//! the whole view, including matches that run across units and across the
//! boundaries between documents:
//!
//! 1. **Each unit** (in parallel) iterates its matches with the haystack
//!    capped at the unit's end, the regex still seeing the bytes beyond it
//!    for look-around. A capped match is the true one unless some match
//!    that starts at or before it runs past the cap. That can only happen
//!    if the text from its start to the cap is a *prefix* of a match, which
//!    a small reverse automaton over every prefix of the pattern (its
//!    look-arounds dropped, so it over-approximates) decides by reading
//!    backwards from the cap: for `\s+` it stops at the first byte that is
//!    not a space, for `[^,]+,` at the first comma. Where a crossing is
//!    possible the unit searches uncapped instead (the match ends where the
//!    regex engine stops on its own), and where no match completes before
//!    the cap it leaves an *open* position for step 2. Where the reverse
//!    automaton would not die for a long way (`(?s)BEGIN.*`: every string
//!    is a suffix of a prefix), the unit instead takes the occurrences of
//!    the pattern's literal prefixes as its possible starts, and finds its
//!    matches by trying them anchored. A unit that only counts settles a
//!    dense run of matches by their ends alone, with the forward automaton.
//! 2. **The merge** (sequential, in text order) stitches the units: it drops
//!    a unit's matches that start inside the previous unit's last match,
//!    re-searches from there when the two disagree (one match, usually
//!    none), and resolves open positions with an uncapped search. What that
//!    search learns about the text after the unit (the next match) is kept,
//!    so a stretch without matches is scanned sequentially once at most.
//! 3. **Document boundaries.** The storage of a multi-document view is not
//!    contiguous, so a match that may run from one segment into the next is
//!    searched in a small copied window around the boundary, grown until
//!    the result is certain: the match's own automaton has died before the
//!    window's end (a forward check) and no earlier start can still be
//!    alive (the reverse check). Should a window reach [`WINDOW_MAX`]
//!    without certainty, the search gives up and the caller falls back to
//!    one contiguous copy of the view (exact, one thread).
//!
//! Cost: one parallel pass, plus the re-searches at unit boundaries, plus,
//! in the worst case (a prefix of the pattern that stays alive across many
//! units without completing, such as `[^,]+,` over text with no comma), one
//! sequential pass. Memory: the units' matches, capped per unit when only
//! counting.
//!
//! Patterns with `\A` or `\z` do not come here: they depend on the view's
//! ends, which a unit does not see.

use std::borrow::Cow;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::prefilter::Prefilter;
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input, MatchKind, Span};
use regex_syntax::hir::{Hir, HirKind, Repetition};

use crate::error::Result;
use crate::text::Text;

use super::Unit;

/// At most this many possible crossing starts are remembered per cap.
const REVERSE_STARTS_MAX: usize = 4096;
/// How far back the prefix automaton reads before a unit with a literal
/// prefilter takes its literal occurrences as possible starts instead.
const REVERSE_BUDGET: usize = 64 << 10;
/// The largest window copied to search across a document boundary.
pub(crate) const WINDOW_MAX: usize = 16 << 20;
/// Matches a counting unit keeps for the merge; the rest it only counts.
const COUNT_KEEP: usize = 16;

/// The automata for searching a crossing pattern in pieces.
pub(crate) struct Crossing {
    /// The pattern itself, for searches over a range of a larger haystack.
    meta: meta::Regex,
    /// Reverse, anchored, all-matches automaton over every prefix of a
    /// match; `None` when it could not be built (then any crossing is
    /// considered possible).
    prefixes: Option<DFA>,
    /// Forward, leftmost-first automaton of the pattern: anchored, to tell
    /// where the match at a known start can end; unanchored, to count.
    forward: Option<DFA>,
    /// Whether every match is at least one byte long, so that a count can
    /// resume at each match's end without the empty-match rule.
    never_empty: bool,
    /// The literal prefixes' prefilter, when every match starts with one
    /// of them and is non-empty: see [`Crossing::reach`].
    starts: Option<Prefilter>,
}

impl std::fmt::Debug for Crossing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Crossing")
    }
}

impl Crossing {
    /// Builds the automata for `source` (already rewritten for ASCII `\b`)
    /// whose parsed form is `hir`; `None` if the regex engine refuses it.
    pub(crate) fn new(source: &str, hir: &Hir, case_insensitive: bool) -> Option<Crossing> {
        let meta = meta::Builder::new()
            .configure(
                meta::Config::new()
                    .utf8_empty(false)
                    .nfa_size_limit(Some(64 << 20))
                    .hybrid_cache_capacity(64 << 20),
            )
            .syntax(
                syntax::Config::new()
                    .multi_line(true)
                    .crlf(true)
                    .case_insensitive(case_insensitive)
                    .utf8(false),
            )
            .build(source)
            .ok()?;
        let dfa = |hir: &Hir, reverse: bool, kind: MatchKind, pre: Option<Prefilter>| {
            let nfa = thompson::Compiler::new()
                .configure(
                    thompson::Config::new()
                        .reverse(reverse)
                        .utf8(false)
                        .nfa_size_limit(Some(16 << 20))
                        .which_captures(WhichCaptures::None),
                )
                .build_from_hir(hir)
                .ok()?;
            DFA::builder()
                .configure(
                    DFA::config()
                        .match_kind(kind)
                        .unicode_word_boundary(true)
                        .prefilter(pre)
                        .cache_capacity(8 << 20),
                )
                .build_from_nfa(nfa)
                .ok()
        };
        let never_empty = hir.properties().minimum_len().is_some_and(|n| n > 0);
        Some(Crossing {
            meta,
            prefixes: dfa(&prefixes(hir), true, MatchKind::All, None),
            // The count's unanchored forward scan skips to literal
            // candidates as the regex crate does; without this a sparse
            // `User:\s*\d+` costs the automaton's per-byte steps.
            forward: dfa(hir, false, MatchKind::LeftmostFirst, fast_prefilter(hir)),
            never_empty,
            starts: never_empty
                .then(|| Prefilter::from_hir_prefix(MatchKind::LeftmostFirst, hir))
                .flatten(),
        })
    }

    /// The leftmost-first match in `hay[from..cap]` as the iterator of the
    /// regex crate would report it after a match ending at `last_end`: an
    /// empty match right there is skipped.
    fn find(
        &self,
        cache: &mut meta::Cache,
        hay: &[u8],
        from: usize,
        cap: usize,
        last_end: Option<usize>,
    ) -> Option<(usize, usize)> {
        let mut at = from;
        loop {
            if at > cap {
                return None;
            }
            let m = self
                .meta
                .search_with(cache, &Input::new(hay).range(at..cap))?;
            if m.is_empty() && Some(m.end()) == last_end {
                at = m.end() + 1;
                continue;
            }
            return Some((m.start(), m.end()));
        }
    }

    /// The leftmost-first match starting exactly at `at`, within `hay[..cap]`.
    fn anchored(
        &self,
        cache: &mut meta::Cache,
        hay: &[u8],
        at: usize,
        cap: usize,
    ) -> Option<(usize, usize)> {
        let m = self.meta.search_with(
            cache,
            &Input::new(hay).range(at..cap).anchored(Anchored::Yes),
        )?;
        Some((m.start(), m.end()))
    }

    /// The possible starts `s < at` of a match prefix `hay[s..at]`, reading
    /// back from `at` to `lo` at most.
    fn reverse(
        &self,
        cache: &mut Option<Cache>,
        hay: &[u8],
        lo: usize,
        at: usize,
        budget: usize,
    ) -> Reach {
        let unknown = Reach {
            starts: Vec::new(),
            floor: at,
            alive: at > lo,
            literal: false,
        };
        let Some(dfa) = &self.prefixes else {
            return unknown;
        };
        let cache = cache.get_or_insert_with(|| dfa.create_cache());
        let input = Input::new(hay).range(lo..at).anchored(Anchored::Yes);
        let Ok(mut sid) = dfa.start_state_reverse(cache, &input) else {
            return unknown;
        };
        let stop = lo.max(at.saturating_sub(budget));
        let mut starts = Vec::new();
        let mut i = at;
        while i > stop {
            i -= 1;
            sid = match dfa.next_state(cache, sid, hay[i]) {
                Ok(s) if !s.is_quit() => s,
                _ => return unknown,
            };
            // Matches show one byte late: this state says whether
            // `hay[i + 1..at]` is a prefix.
            if sid.is_match() && i + 1 < at {
                starts.push(i + 1);
            }
            if sid.is_dead() {
                starts.reverse();
                return Reach {
                    starts,
                    floor: i,
                    alive: false,
                    literal: false,
                };
            }
            if starts.len() > REVERSE_STARTS_MAX {
                starts.reverse();
                return Reach {
                    starts,
                    floor: i,
                    alive: true,
                    literal: false,
                };
            }
        }
        let last = if i > 0 {
            dfa.next_state(cache, sid, hay[i - 1])
        } else {
            dfa.next_eoi_state(cache, sid)
        };
        let Ok(last) = last else {
            return unknown;
        };
        if last.is_match() && i < at {
            starts.push(i);
        }
        starts.reverse();
        Reach {
            starts,
            floor: i,
            alive: i > lo && !last.is_dead(),
            literal: false,
        }
    }

    /// The possible starts `s < at` of a match running past `at`, at least
    /// those in `lo..at`: read back with the prefix automaton where that
    /// dies soon, else (a never-dying prefix such as `(?s)BEGIN.*`, which
    /// would be read back through the whole unit at several times the
    /// cost of a literal scan) the occurrences of the literal prefixes.
    fn reach(&self, cache: &mut Option<Cache>, hay: &[u8], lo: usize, at: usize) -> Reach {
        let Some(pre) = &self.starts else {
            return self.reverse(cache, hay, lo, at, usize::MAX);
        };
        // A sixteenth of the unit at most, so that small units (tests')
        // take this path as 4 MiB ones do, but at least a literal's length:
        // where a literal may run on into the next piece, the read back
        // tells which of the last positions start a prefix of one. Without
        // it a small piece (a document's header) would leave all of them
        // as candidates and its unit undecided.
        let budget = REVERSE_BUDGET
            .min(at.saturating_sub(lo) / 256)
            .max(pre.max_needle_len());
        let read = self.reverse(cache, hay, lo, at, budget);
        if !read.alive || read.floor <= lo {
            return read;
        }
        // A literal that starts before `at` may end after it.
        let end = hay.len().min(at.saturating_add(pre.max_needle_len()));
        let mut starts = Vec::new();
        let mut dropped = false;
        let mut from = lo;
        while from < at {
            let Some(span) = pre.find(hay, Span::from(from..end)) else {
                break;
            };
            if span.start >= at {
                break;
            }
            if starts.len() == 2 * REVERSE_STARTS_MAX {
                // Only the last ones can still be crossing starts once the
                // scan reaches them; memory stays bounded.
                starts.drain(..REVERSE_STARTS_MAX);
                dropped = true;
            }
            starts.push(span.start);
            from = span.start + 1;
        }
        if at.saturating_add(pre.max_needle_len()) > hay.len() {
            // A literal may begin near the piece's end and go on in the
            // next piece, where this scan cannot see it.
            // The read back settles these positions where it reached them.
            let tail = hay.len().saturating_sub(pre.max_needle_len()).max(lo);
            if read.floor <= tail {
                starts.extend(read.starts.iter().filter(|&&s| s >= tail));
            } else {
                starts.extend(tail..at);
            }
            starts.sort_unstable();
            starts.dedup();
        }
        let floor = if dropped {
            starts.first().copied().unwrap_or(lo)
        } else {
            lo
        };
        Reach {
            starts,
            floor,
            alive: dropped,
            literal: true,
        }
    }

    /// Whether every match path from `start` ends before `cap`: the
    /// forward automaton anchored there dies before reading `hay[cap]`.
    fn settles_before(
        &self,
        cache: &mut Option<Cache>,
        hay: &[u8],
        start: usize,
        cap: usize,
    ) -> bool {
        let Some(dfa) = &self.forward else {
            return false;
        };
        let cache = cache.get_or_insert_with(|| dfa.create_cache());
        let input = Input::new(hay).range(start..cap).anchored(Anchored::Yes);
        let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
            return false;
        };
        for &b in &hay[start..cap] {
            sid = match dfa.next_state(cache, sid, b) {
                Ok(s) if !s.is_quit() => s,
                _ => return false,
            };
            if sid.is_dead() {
                return true;
            }
        }
        false
    }

    /// The capture groups 1.. of the match `[start, end)` of `hay`.
    pub(crate) fn groups(
        &self,
        hay: &[u8],
        start: usize,
        end: usize,
    ) -> Vec<Option<(usize, usize)>> {
        let mut caps = self.meta.create_captures();
        let input = Input::new(hay).range(start..end).anchored(Anchored::Yes);
        self.meta.search_captures(&input, &mut caps);
        (1..caps.group_len())
            .map(|g| caps.get_group(g).map(|s| (s.start, s.end)))
            .collect()
    }
}

/// A prefilter for `hir`'s literal prefixes, when one beats the automaton.
fn fast_prefilter(hir: &Hir) -> Option<Prefilter> {
    Prefilter::from_hir_prefix(MatchKind::LeftmostFirst, hir).filter(Prefilter::is_fast)
}

/// What the reverse prefix automaton found reading back from a cap.
struct Reach {
    /// Possible starts of a match running past the cap, ascending.
    starts: Vec<usize>,
    /// Where the reading stopped.
    floor: usize,
    /// Whether starts below `floor` are possible too.
    alive: bool,
    /// Whether `starts` are the occurrences of the pattern's literal
    /// prefixes: then they hold every match start, not only crossing ones.
    literal: bool,
}

impl Reach {
    /// Whether a match starting in `[lo, hi]` could run past the cap.
    fn any_in(&self, lo: usize, hi: usize) -> bool {
        if self.alive && lo < self.floor {
            return true;
        }
        let i = self.starts.partition_point(|&s| s < lo);
        self.starts.get(i).is_some_and(|&s| s <= hi)
    }
}

/// Every string that is a prefix of a match of `h`, look-arounds dropped:
/// an over-approximation, so "not a prefix" is certain.
fn prefixes(h: &Hir) -> Hir {
    /// Literals longer than this are approximated by "any bytes".
    const LITERAL_MAX: usize = 256;
    let opt = |h: Hir| {
        Hir::repetition(Repetition {
            min: 0,
            max: Some(1),
            greedy: true,
            sub: Box::new(h),
        })
    };
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Hir::empty(),
        HirKind::Literal(lit) if lit.0.len() > LITERAL_MAX => Hir::repetition(Repetition {
            min: 0,
            max: None,
            greedy: true,
            sub: Box::new(Hir::class(regex_syntax::hir::Class::Bytes(
                regex_syntax::hir::ClassBytes::new([regex_syntax::hir::ClassBytesRange::new(
                    0, 255,
                )]),
            ))),
        }),
        HirKind::Literal(lit) => lit.0.iter().rev().fold(Hir::empty(), |rest, &b| {
            opt(Hir::concat(vec![Hir::literal([b]), rest]))
        }),
        HirKind::Class(_) => opt(h.clone()),
        HirKind::Repetition(rep) => match rep.max {
            Some(0) => Hir::empty(),
            max => Hir::concat(vec![
                Hir::repetition(Repetition {
                    min: 0,
                    max: max.map(|m| m - 1),
                    greedy: true,
                    sub: Box::new(plain(&rep.sub)),
                }),
                prefixes(&rep.sub),
            ]),
        },
        HirKind::Capture(cap) => prefixes(&cap.sub),
        HirKind::Concat(subs) => {
            let mut parts = subs.iter().rev();
            let last = parts.next().map_or_else(Hir::empty, prefixes);
            parts.fold(last, |rest, sub| {
                Hir::alternation(vec![prefixes(sub), Hir::concat(vec![plain(sub), rest])])
            })
        }
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(prefixes).collect()),
    }
}

/// `h` without look-arounds and capture groups.
fn plain(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Hir::empty(),
        HirKind::Literal(_) | HirKind::Class(_) => h.clone(),
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            min: rep.min,
            max: rep.max,
            greedy: rep.greedy,
            sub: Box::new(plain(&rep.sub)),
        }),
        HirKind::Capture(cap) => plain(&cap.sub),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(plain).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(plain).collect()),
    }
}

/// How the scan moves on after a match.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Like the regex crate's iterator: from the match's end, skipping an
    /// empty match right there.
    Matches,
    /// Like grep: from the end of the line the match starts on, or from the
    /// match's end if that is later.
    Lines,
}

/// One match, in global offsets, and where the scan resumed after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    resume: usize,
    /// Grep stops after this hit: it is on the view's last line.
    last: bool,
}

/// Where a crossing search delivers its matches, in text order.
pub(crate) trait Sink {
    /// One match; false to stop.
    fn hit(&mut self, hit: Hit) -> bool;
    /// `n` more matches that only a count needs; false to stop.
    fn more(&mut self, n: usize) -> bool;
}

/// A unit with the haystack it lies in.
struct Part<'a> {
    /// The storage piece holding the unit.
    hay: &'a [u8],
    /// Global offset of `hay[0]`.
    base: usize,
    /// The unit, relative to `hay`.
    a: usize,
    b: usize,
    /// Whether `b` is the end of the view (and so of its last piece).
    at_view_end: bool,
    /// Whether the piece ends at `b` with more of the view after it.
    into_next: bool,
    /// Whether the piece is the view's last.
    last_piece: bool,
}

/// What a unit's own scan found.
#[derive(Default)]
struct Scan {
    /// Its first matches (all of them, when listing).
    hits: Vec<Hit>,
    /// How many matches followed `hits` uncollected (counting only).
    more: usize,
    /// Its last match.
    last: Option<Hit>,
    /// From here on the unit's scan could not decide; the merge goes on.
    open: Option<usize>,
}

/// What the merge knows about the text after its position.
#[derive(Clone, Copy)]
enum Ahead {
    Nothing,
    /// The next match of the sequential scan.
    Next(Hit),
    /// No match starts before this global offset.
    NoneBefore(usize),
}

/// Whether a search ran to the end or its sink stopped it.
enum Flow {
    Done,
    Stopped,
}

/// What a unit's scan settled at one position.
enum Decided {
    /// The next match, or none before the unit's end.
    Match(Option<(usize, usize)>),
    /// The merge must decide, from this position (hay-relative): no match
    /// starts between the scan's position and it.
    Open(usize),
}

/// How far past its unit a match tried at a possible crossing start may
/// run before the unit leaves the question to the merge.
const LOOKAHEAD: usize = 1 << 20;
/// At most this many possible crossing starts are tried per position.
const CANDIDATES_MAX: usize = 8;

impl Part<'_> {
    /// The next match from `x` when the capped search found `capped` and
    /// every possible start of a match running past the unit is in `reach`:
    /// the leftmost of them with a match wins, else `capped` stands. Each
    /// is tried anchored, once its automaton is known to die within
    /// [`LOOKAHEAD`] of the unit.
    #[allow(clippy::too_many_arguments)]
    fn at_candidates(
        &self,
        c: &Crossing,
        mc: &mut meta::Cache,
        cache: &mut Option<Cache>,
        reach: &Reach,
        x: usize,
        lim: usize,
        capped: Option<(usize, usize)>,
        skip_empty_at: Option<usize>,
    ) -> Decided {
        let cap = self.hay.len().min(self.b.saturating_add(LOOKAHEAD));
        let from = reach.starts.partition_point(|&s| s < x);
        let candidates = reach.starts[from..].iter().take_while(|&&s| s <= lim);
        for (tried, &s) in candidates.enumerate() {
            // The candidates before `s` have no match, and a match starting
            // elsewhere before it would have been found capped.
            if tried == CANDIDATES_MAX || !c.settles_before(cache, self.hay, s, cap) {
                return Decided::Open(s);
            }
            if let Some(m) = c.anchored(mc, self.hay, s, cap) {
                if !(m.0 == m.1 && Some(m.0) == skip_empty_at) {
                    if m.1 == self.hay.len() && !self.last_piece {
                        return Decided::Open(s);
                    }
                    return Decided::Match(Some(m));
                }
            }
        }
        // Where the piece ends at the cut, the capped match's look-ahead
        // there is not known.
        if let Some((start, end)) = capped.filter(|_| self.into_next) {
            if end == self.b {
                return Decided::Open(start);
            }
        }
        Decided::Match(capped)
    }

    /// Where a scan in `Step` mode resumes after `[s, e)` (hay-relative),
    /// or `None` when the line runs past the haystack into another piece.
    fn resume(&self, step: Step, s: usize, e: usize) -> usize {
        match step {
            Step::Matches => e,
            Step::Lines => self.line_end(s).max(e),
        }
    }

    /// The end of the line holding `s`, after its newline (hay-relative).
    fn line_end(&self, s: usize) -> usize {
        memchr::memchr(b'\n', &self.hay[s..]).map_or(self.hay.len(), |i| s + i + 1)
    }

    /// Whether grep stops after a hit at `s`: its line is the view's last.
    fn last_line(&self, step: Step, s: usize) -> bool {
        step == Step::Lines && self.at_view_end && self.line_end(s) == self.b
    }

    fn hit(&self, step: Step, s: usize, e: usize) -> Hit {
        Hit {
            start: self.base + s,
            end: self.base + e,
            resume: self.base + self.resume(step, s, e),
            last: self.last_line(step, s),
        }
    }

    /// Whether a match at `start` (hay-relative) belongs to this unit.
    fn owns(&self, start: usize) -> bool {
        start < self.b || (self.at_view_end && start == self.b)
    }

    /// The unit's scan: matches starting in it, found with the cap at its
    /// end, uncapped where the reverse check says a match may run past it.
    fn scan(
        &self,
        c: &Crossing,
        caches: &mut Caches,
        step: Step,
        keep: usize,
        counting: bool,
    ) -> Scan {
        let Caches {
            meta: mc,
            prefixes: cache,
            forward: cache_fwd,
        } = caches;
        let mut out = Scan::default();
        let exact_end = self.at_view_end;
        let mut x = self.a;
        let mut last_end = None;
        let mut fast = true;
        // Every possible start of a match running past the unit, known
        // back to its start (see `Crossing::reach`), so that a never-dying
        // prefix (`(?s)BEGIN.*`) does not leave the unit undecided, which
        // would cost a second, uncapped search of it. Taken before the
        // first search, since literal starts replace that search.
        let reach = (!exact_end).then(|| c.reach(cache, self.hay, self.a, self.b));
        while self.owns(x) {
            // Once the starts are literal occurrences, every match is
            // found at one of them, without the regex crate's unanchored
            // search: its reverse search for each start reads back to the
            // previous match where the pattern has `(?s).*`.
            let literal = reach
                .as_ref()
                .is_some_and(|r| r.literal && !(r.alive && x < r.floor));
            let capped = if literal {
                None
            } else {
                c.find(
                    mc,
                    self.hay,
                    x,
                    self.b,
                    last_end.filter(|_| step == Step::Matches),
                )
            };
            let lim = capped.map_or(self.b.saturating_sub(1), |(s, _)| s);
            let may_cross = reach.as_ref().is_some_and(|r| {
                r.any_in(x, lim) || (self.into_next && capped.is_some_and(|(_, e)| e == self.b))
            });
            let skip_empty_at = last_end.filter(|_| step == Step::Matches);
            let decided = if !may_cross {
                Decided::Match(capped)
            } else {
                let complete = reach.as_ref().filter(|r| !(r.alive && x < r.floor));
                match complete {
                    Some(r) => {
                        self.at_candidates(c, mc, cache_fwd, r, x, lim, capped, skip_empty_at)
                    }
                    None if self.into_next => Decided::Open(x),
                    None => match capped {
                        // A match exists, so the uncapped search stops near it.
                        Some(_) => match c.find(mc, self.hay, x, self.hay.len(), skip_empty_at) {
                            Some((s, e)) if e < self.hay.len() || self.last_piece => {
                                Decided::Match(Some((s, e)))
                            }
                            _ => Decided::Open(x),
                        },
                        None => Decided::Open(x),
                    },
                }
            };
            let (s, e) = match decided {
                Decided::Match(Some(m)) => m,
                Decided::Match(None) => break,
                Decided::Open(at) => {
                    out.open = Some(self.base + at);
                    break;
                }
            };
            if !self.owns(s) {
                break;
            }
            let hit = self.hit(step, s, e);
            out.last = Some(hit);
            if out.hits.len() < keep {
                out.hits.push(hit);
            } else if counting {
                out.more += 1;
            } else {
                out.open = Some(hit.start);
                out.last = out.hits.last().copied();
                break;
            }
            last_end = Some(e);
            x = hit.resume - self.base;
            // Grep has no line after the view's last.
            if self.last_line(step, s) {
                break;
            }
            if fast && counting && step == Step::Matches && out.hits.len() >= keep {
                // A try that counts nothing (every match start is a
                // possible crossing, as in `(?s)BEGIN.*?END`) would only
                // double the unit's searches if repeated.
                fast = false;
                if let Some((n, p)) = self.count_ends(c, cache_fwd, reach.as_ref(), x) {
                    fast = true;
                    // The kept last match is the one the count ended on;
                    // only its end was seen, so find it once from where
                    // its search began.
                    let Some((s, e)) = c.find(mc, self.hay, p, self.b, None) else {
                        break;
                    };
                    out.more += n;
                    out.last = Some(self.hit(step, s, e));
                    last_end = Some(e);
                    x = e;
                }
            }
        }
        out
    }

    /// Counts the matches after `x` whose ends alone settle them, with the
    /// forward automaton only: about half the work of finding each match
    /// (no reverse search for its start), and none of the regex crate's
    /// per-call set-up, which dominate when matches are a few bytes apart
    /// (`\s+`, `[^,]+,`). A match ending at `e` is the sequential scan's
    /// when no possible crossing start lies before `e` and it ends before
    /// the unit's end. Returns the count and where the last counted match's
    /// search began, or `None` when it counted nothing.
    fn count_ends(
        &self,
        c: &Crossing,
        cache: &mut Option<Cache>,
        reach: Option<&Reach>,
        mut x: usize,
    ) -> Option<(usize, usize)> {
        let dfa = c.forward.as_ref().filter(|_| c.never_empty)?;
        let settled_below = match reach {
            _ if self.at_view_end => usize::MAX,
            None => return None,
            Some(r) if r.alive && x < r.floor => return None,
            Some(r) => {
                let next = r.starts.partition_point(|&s| s < x);
                r.starts.get(next).copied().unwrap_or(usize::MAX)
            }
        };
        let cache = cache.get_or_insert_with(|| dfa.create_cache());
        let mut counted = 0;
        let mut began = x;
        while x < self.b {
            let input = Input::new(self.hay).range(x..self.b);
            let Ok(Some(m)) = dfa.try_search_fwd(cache, &input) else {
                break;
            };
            let e = m.offset();
            if e > settled_below || e >= self.b || e <= x {
                break;
            }
            counted += 1;
            began = x;
            x = e;
        }
        (counted > 0).then_some((counted, began))
    }
}

impl Text {
    /// The units of the view for a crossing search, with their pieces.
    fn crossing_parts(&self) -> Vec<Part<'_>> {
        let pieces: Vec<(usize, &[u8])> = self.pieces().collect();
        let units = self.split_units();
        let mut parts = Vec::with_capacity(units.len());
        let mut p = 0;
        for Unit { start, bytes, .. } in units {
            while p + 1 < pieces.len() && start >= pieces[p].0 + pieces[p].1.len() {
                p += 1;
            }
            let (base, hay) = pieces.get(p).copied().unwrap_or((self.start, &[]));
            let a = start - base;
            let b = a + bytes.len();
            let at_view_end = base + b == self.end;
            parts.push(Part {
                hay,
                base,
                a,
                b,
                at_view_end,
                into_next: b == hay.len() && !at_view_end,
                last_piece: base + hay.len() == self.end,
            });
        }
        parts
    }

    /// Runs a crossing search over the view, delivering every match to
    /// `sink` exactly as one sequential scan would. `Ok(false)` means it
    /// gave up on a document boundary (see [`WINDOW_MAX`]); the caller then
    /// searches one copy of the view.
    pub(crate) fn crossing_search(
        &self,
        c: &Crossing,
        step: Step,
        limit: usize,
        counting: bool,
        sink: &mut dyn Sink,
    ) -> Result<bool> {
        use rayon::prelude::*;
        let parts = self.crossing_parts();
        let keep = if counting { COUNT_KEEP } else { limit.max(1) };
        let wave = if limit == usize::MAX {
            parts.len().max(1)
        } else {
            rayon::current_num_threads() * 4
        };
        let mut merge = Merge {
            text: self,
            c,
            step,
            cur: self.start,
            last_end: None,
            ahead: Ahead::Nothing,
            cache: c.meta.create_cache(),
        };
        for group in parts.chunks(wave) {
            let scans: Vec<Result<Scan>> = group
                .par_iter()
                .map_init(
                    || Caches::new(c),
                    |caches, part| {
                        self.check_interrupt()?;
                        Ok(part.scan(c, caches, step, keep, counting))
                    },
                )
                .collect();
            for (part, scan) in group.iter().zip(scans) {
                match merge.unit(part, &scan?, sink)? {
                    Some(Flow::Done) => {}
                    Some(Flow::Stopped) => return Ok(true),
                    None => return Ok(false),
                }
            }
        }
        Ok(true)
    }
}

/// A worker's automaton caches, kept across the units it scans. Creating a
/// regex cache costs about as much as searching a rare pattern through a
/// unit, and each new lazy DFA cache builds its states again: over 1,000
/// small documents that was more work than the search itself.
struct Caches {
    meta: meta::Cache,
    /// The reverse prefix automaton's.
    prefixes: Option<Cache>,
    /// The forward automaton's.
    forward: Option<Cache>,
}

impl Caches {
    fn new(c: &Crossing) -> Caches {
        Caches {
            meta: c.meta.create_cache(),
            prefixes: None,
            forward: None,
        }
    }
}

/// The sequential stitching of the units' scans.
struct Merge<'t, 'c> {
    text: &'t Text,
    c: &'c Crossing,
    step: Step,
    /// Where the sequential scan would search next (global).
    cur: usize,
    /// End of the last match delivered (global).
    last_end: Option<usize>,
    ahead: Ahead,
    cache: meta::Cache,
}

impl Merge<'_, '_> {
    fn deliver(&mut self, hit: Hit, sink: &mut dyn Sink) -> bool {
        self.cur = hit.resume;
        self.last_end = Some(hit.end);
        sink.hit(hit) && !hit.last
    }

    /// Whether the sequential scan would skip `hit` because it starts
    /// before the scan's position or is an empty match right after the last.
    fn skips(&self, hit: &Hit) -> bool {
        hit.start < self.cur
            || (self.step == Step::Matches
                && hit.start == hit.end
                && Some(hit.start) == self.last_end)
    }

    /// Merges one unit; `None` if a window across a document boundary
    /// could not be settled.
    fn unit(&mut self, part: &Part<'_>, scan: &Scan, sink: &mut dyn Sink) -> Result<Option<Flow>> {
        let ub = part.base + part.b;
        let owns = |pos: usize| pos < ub || (part.at_view_end && pos == ub);
        match self.ahead {
            Ahead::NoneBefore(p) if p > ub || (p == ub && !part.at_view_end) => {
                return Ok(Some(Flow::Done))
            }
            Ahead::Next(h) if !owns(h.start) => return Ok(Some(Flow::Done)),
            Ahead::Next(h) => {
                self.ahead = Ahead::Nothing;
                if !self.deliver(h, sink) {
                    return Ok(Some(Flow::Stopped));
                }
            }
            _ => self.ahead = Ahead::Nothing,
        }
        if self.cur > ub || (self.cur == ub && !part.at_view_end) {
            return Ok(Some(Flow::Done));
        }
        // The first of the unit's matches the sequential scan also finds:
        // one it does not skip, found from a position at or before `cur`.
        let first = scan.hits.iter().position(|h| !self.skips(h));
        let synced = match first {
            // The unit searched from its start, before or at `cur`, and
            // found nothing earlier.
            Some(0) => true,
            Some(i) => scan.hits[i - 1].resume <= self.cur,
            // All skipped: the unit went on from its last match's resume
            // point, unless grep stopped there on the view's last line.
            None => {
                scan.more == 0
                    && scan
                        .hits
                        .last()
                        .is_none_or(|h| h.resume <= self.cur && !h.last)
            }
        };
        if !synced {
            return self.resolve(part, self.cur, sink);
        }
        if let Some(i) = first {
            for h in &scan.hits[i..] {
                if !self.deliver(*h, sink) {
                    return Ok(Some(Flow::Stopped));
                }
            }
            if scan.more > 0 {
                if !sink.more(scan.more) {
                    return Ok(Some(Flow::Stopped));
                }
                if let Some(last) = scan.last {
                    self.cur = last.resume;
                    self.last_end = Some(last.end);
                }
            }
        }
        match scan.open {
            Some(open) => self.resolve(part, open.max(self.cur), sink),
            None => Ok(Some(Flow::Done)),
        }
    }

    /// Continues the sequential scan from `from` to the unit's end.
    fn resolve(
        &mut self,
        part: &Part<'_>,
        from: usize,
        sink: &mut dyn Sink,
    ) -> Result<Option<Flow>> {
        self.text.check_interrupt()?;
        if part.last_piece {
            Ok(Some(self.resolve_in_piece(part, from, sink)))
        } else {
            self.resolve_in_window(part, from, sink)
        }
    }

    /// [`Merge::resolve`] in the view's last piece: uncapped searches over it.
    fn resolve_in_piece(&mut self, part: &Part<'_>, from: usize, sink: &mut dyn Sink) -> Flow {
        let mut x = from.max(part.base + part.a) - part.base;
        loop {
            let last = self
                .last_end
                .filter(|_| self.step == Step::Matches)
                .and_then(|e| e.checked_sub(part.base));
            let Some((s, e)) = self
                .c
                .find(&mut self.cache, part.hay, x, part.hay.len(), last)
            else {
                self.ahead = Ahead::NoneBefore(usize::MAX);
                return Flow::Done;
            };
            let hit = part.hit(self.step, s, e);
            if !part.owns(s) {
                self.ahead = Ahead::Next(hit);
                return Flow::Done;
            }
            if !self.deliver(hit, sink) {
                return Flow::Stopped;
            }
            x = hit.resume - part.base;
            if part.last_line(self.step, s) {
                return Flow::Done;
            }
            if !part.owns(x) {
                return Flow::Done;
            }
        }
    }

    /// [`Merge::resolve`] where matches may run into the next pieces: the
    /// search runs in a copied window, grown until its results are certain.
    fn resolve_in_window(
        &mut self,
        part: &Part<'_>,
        from: usize,
        sink: &mut dyn Sink,
    ) -> Result<Option<Flow>> {
        let text = self.text;
        let until = part.base + part.b;
        let mut x = from;
        let mut size = (4 << 10).max(2 * (until - from.min(until)));
        'grow: loop {
            if size > WINDOW_MAX {
                return Ok(None);
            }
            // Four bytes of context on either side, for look-around.
            let lo = x.saturating_sub(4).max(text.start);
            let cap = (x + size).min(text.end);
            let copy_end = (cap + 4).min(text.end);
            let window = text.view(lo, copy_end);
            let copy: Cow<'_, [u8]> = window.bytes();
            let exact = cap == text.end;
            let rel = |g: usize| g - lo;
            let mut cache_rev = None;
            let mut cache_fwd = None;
            loop {
                if x > until || (x == until && !part.at_view_end) {
                    return Ok(Some(Flow::Done));
                }
                let last = self
                    .last_end
                    .filter(|_| self.step == Step::Matches)
                    .and_then(|e| e.checked_sub(lo));
                let found = self.c.find(&mut self.cache, &copy, rel(x), rel(cap), last);
                match found {
                    Some((s, e)) if s < rel(until) || (part.at_view_end && s == rel(until)) => {
                        let certain = exact
                            || (!self
                                .c
                                .reverse(&mut cache_rev, &copy, rel(x), s, usize::MAX)
                                .any_in(rel(x), s.saturating_sub(1).max(rel(x)))
                                || s == rel(x))
                                && self.c.settles_before(&mut cache_fwd, &copy, s, rel(cap));
                        let resume = match self.step {
                            Step::Matches => Some(e),
                            Step::Lines => memchr::memchr(b'\n', &copy[s..])
                                .map(|i| (s + i + 1).max(e))
                                .filter(|&r| r <= rel(cap))
                                .or_else(|| exact.then_some(copy.len().max(e))),
                        };
                        let (true, Some(resume)) = (certain, resume) else {
                            size *= 4;
                            continue 'grow;
                        };
                        let hit = Hit {
                            start: lo + s,
                            end: lo + e,
                            resume: lo + resume,
                            last: false,
                        };
                        if !self.deliver(hit, sink) {
                            return Ok(Some(Flow::Stopped));
                        }
                        if self.step == Step::Lines && hit.resume == hit.start {
                            return Ok(Some(Flow::Done));
                        }
                        x = hit.resume;
                    }
                    _ => {
                        // No match starts before the unit's end, unless
                        // one that started there is still alive at the cap.
                        let hi = rel(until).min(rel(cap)).saturating_sub(1);
                        let alive = !exact
                            && hi >= rel(x)
                            && self
                                .c
                                .reverse(&mut cache_rev, &copy, rel(x), rel(cap), usize::MAX)
                                .any_in(rel(x), hi);
                        if alive {
                            size *= 4;
                            continue 'grow;
                        }
                        return Ok(Some(Flow::Done));
                    }
                }
            }
        }
    }
}
