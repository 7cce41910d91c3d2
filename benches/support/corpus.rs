//! A deterministic, English-like corpus for benchmarks.
//!
//! Shared by `benches/text_ops.rs` and `examples/bench_search.rs` (through
//! `#[path]`), so the criterion numbers and the `compare.sh` numbers are
//! measured on the same kind of text. It is not a target of its own:
//! Cargo only discovers `benches/*.rs` and `benches/*/main.rs`.
//!
//! The text is sentences of common words drawn by a fixed LCG, one sentence
//! per line (about 70 bytes). Word frequencies are skewed like English:
//! `the` is about 6% of words, and words such as `there`, `other` and
//! `weather` contain `the` without being it, so `\bthe\b` has to check
//! its boundaries. Rare markers give the searches something to find:
//!
//! * [`RARE_LITERAL`] on about one line in 50,000 (roughly every 3.5 MiB);
//! * a `ZQX` + digits token, matched by [`RARE_REGEX`], equally rare;
//! * [`LAST_LITERAL`] exactly once, on the last line, so finding it is a
//!   full scan;
//! * [`GREP_PATTERN`] on about 1% of lines;
//! * for the patterns that can match a newline (`compare.sh`'s second
//!   table): `User: N` on one line in 1,000, `magic number of the vault: N`
//!   and `the gentle-river is` on one line in 50,000 each, and a `BEGIN`
//!   on one line in 5,000 whose `END` comes 1 to 8 lines later.
//!
//! With `non_ascii`, about one word in 40 is a Latin word with an accent
//! (`café`, `Zürich`), which is what trips Unicode `\b` in the regex crate.

/// Occurs on about one line in 50,000.
pub const RARE_LITERAL: &str = "Mrs. Hudson";
/// Occurs once, on the last line.
pub const LAST_LITERAL: &str = "Professor Moriarty";
/// A literal-prefixed regex as rare as [`RARE_LITERAL`].
pub const RARE_REGEX: &str = r"ZQX[0-9]+";
/// A regex matching about 6% of words.
pub const FREQUENT_REGEX: &str = r"\bthe\b";
/// A regex matching about 1% of lines.
pub const GREP_PATTERN: &str = r"\b(whisky|lantern)\b";
/// Words ending in `ing`: the pattern that trips Unicode word boundaries.
pub const ING_REGEX: &str = r"\w+ing\b";

/// Frequent words, repeated to skew their frequency. Drawn 7 times in 8.
const COMMON: &str = "\
the the the the the the the of of of of and and and and to to to a a a in in in is is it it \
that that was was he she for on with as his her at by be this had not but from or have an \
they which one you were all we there when would their them then these other more into time \
only could some what about out up said been like over after him two than first man house \
night door room letter morning nothing something thing being during evening going looking \
weather mother brother father together another whether rather further theory";

/// Less frequent words, drawn uniformly 1 time in 8.
const RARE: &str = "\
whisky lantern carriage violin tobacco chemist inspector window street garden river bridge \
station train ticket cab coat hat boots umbrella candle fireplace chair table desk drawer \
paper pencil ink envelope stamp telegram clock watch chain ring necklace jewel diamond ruby \
emerald pearl gold silver copper iron steel glass bottle cup plate knife fork spoon bread \
cheese apple orange lemon sugar salt pepper tea coffee wine beer water milk egg bacon fish \
bird dog horse cat mouse rat snake spider bee flower tree leaf grass stone rock sand mud \
rain snow wind storm fog cloud sun moon star sky sea ship boat harbour island coast cliff \
hill valley forest field farm village town city country empire king queen prince duke lord \
lady doctor lawyer banker clerk servant maid cook butler soldier sailor captain colonel \
general officer constable thief murderer victim witness suspect clue footprint fingerprint \
poison pistol revolver rifle dagger rope ladder key lock safe box trunk bag purse wallet \
coin note cheque bank account debt loan will estate heir widow orphan marriage wedding \
funeral grave church chapel abbey castle tower prison court judge jury verdict sentence \
crime mystery secret riddle puzzle problem solution answer question reason cause effect \
result fact";

/// Accented words mixed in by [`generate`] with `non_ascii`.
const NON_ASCII: &str = "\
café naïve Zürich façade über résumé coöperate jalapeño São Müller Ångström crème déjà señor \
smörgåsbord Dvořák";

/// The 100 needles for the multi-literal benchmark: two present, 98 absent.
pub fn needles() -> Vec<String> {
    const FIRST: [&str; 10] = [
        "Bar", "Cor", "Del", "Fen", "Gal", "Har", "Kel", "Mor", "Pel", "Wy",
    ];
    const SECOND: [&str; 10] = [
        "ton", "ley", "wick", "ford", "by", "more", "ridge", "well", "stead", "combe",
    ];
    let mut out: Vec<String> = vec!["Hudson".into(), "Moriarty".into()];
    for a in FIRST {
        for b in SECOND {
            if out.len() < 100 {
                out.push(format!("{a}{b}x"));
            }
        }
    }
    out
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// About `size` bytes of corpus (a little more: the last line is finished),
/// ending with a line holding [`LAST_LITERAL`]. Same `size` and flag, same bytes.
pub fn generate(size: usize, non_ascii: bool) -> Vec<u8> {
    let mut lines = Lines {
        rng: Lcg(0x5eed_0fc0_ffee),
        common: COMMON.split_whitespace().collect(),
        rare: RARE.split_whitespace().collect(),
        non_ascii: non_ascii.then(|| NON_ASCII.split_whitespace().collect()),
        open_block: None,
    };
    let mut out = Vec::with_capacity(size + 256);
    while out.len() < size {
        lines.push(&mut out);
    }
    out.extend_from_slice(b"And that was the last of ");
    out.extend_from_slice(LAST_LITERAL.as_bytes());
    out.extend_from_slice(b".\n");
    out
}

/// The state of [`generate`]: its random numbers and word lists.
struct Lines {
    rng: Lcg,
    common: Vec<&'static str>,
    rare: Vec<&'static str>,
    non_ascii: Option<Vec<&'static str>>,
    /// Lines until the open `BEGIN` block gets its `END`.
    open_block: Option<u64>,
}

impl Lines {
    /// Appends one sentence and its newline.
    fn push(&mut self, out: &mut Vec<u8>) {
        let words = 6 + self.rng.below(9);
        for i in 0..words {
            if i > 0 {
                let comma = self.rng.below(12) == 0;
                out.extend_from_slice(if comma { b", " } else { b" " });
            }
            let word = self.word();
            let at = out.len();
            out.extend_from_slice(word.as_bytes());
            if i == 0 {
                out[at] = out[at].to_ascii_uppercase();
            }
        }
        match self.rng.below(100_000) {
            0 | 1 => {
                out.extend_from_slice(b" said ");
                out.extend_from_slice(RARE_LITERAL.as_bytes());
            }
            2 | 3 => {
                let id = self.rng.below(1_000_000);
                out.extend_from_slice(format!(" ZQX{id}").as_bytes());
            }
            4 | 5 => {
                let n = self.rng.below(10_000);
                out.extend_from_slice(
                    format!(" and the magic number of the vault: {n}").as_bytes(),
                );
            }
            6 | 7 => out.extend_from_slice(b" where the gentle-river is"),
            10..=29 if self.open_block.is_none() => {
                out.extend_from_slice(b" BEGIN");
                self.open_block = Some(1 + self.rng.below(8));
            }
            100..=199 => {
                let id = self.rng.below(100_000);
                out.extend_from_slice(format!(". User: {id}").as_bytes());
            }
            _ => {}
        }
        match self.open_block {
            Some(0) => {
                out.extend_from_slice(b" END");
                self.open_block = None;
            }
            Some(n) => self.open_block = Some(n - 1),
            None => {}
        }
        out.extend_from_slice(b".\n");
    }

    fn word(&mut self) -> &'static str {
        let rng = &mut self.rng;
        let list = match &self.non_ascii {
            Some(accented) if rng.below(40) == 0 => accented,
            _ if rng.below(8) == 0 => &self.rare,
            _ => &self.common,
        };
        list[rng.below(list.len() as u64) as usize]
    }
}
