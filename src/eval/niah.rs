//! RULER-style single needle in a haystack of generated prose.
//!
//! RULER's S-NIAH hides `One of the special magic numbers for {key} is:
//! {number}.` in Paul Graham's essays. We cannot ship the essays, so the
//! haystack is essay-flavoured prose from sentence templates filled with
//! words from the lists below, in paragraphs of 4–9 sentences. It has no
//! digits and no hyphens, so the needle's number and hyphenated key occur
//! exactly once.

use super::rng::Rng;
use super::{Expected, Generated, Needle};

/// Sentence templates. Placeholders: `{n}`/`{ns}` noun singular/plural,
/// `{a}` adjective, `{v}`/`{vs}`/`{vd}` verb base/third person/past,
/// `{adv}`, `{name}`, `{time}`, `{place}`.
const TEMPLATES: &[&str] = &[
    "the {a} {n} {vd} the {n} {time}.",
    "most {ns} who {v} {a} {ns} {adv} {v} the {ns} that matter.",
    "if you want to {v} a {a} {n}, you have to {v} the {ns} first.",
    "{name} once told me that every {n} {vs} a {a} {n} {place}.",
    "it turns out that {a} {ns} are more {a} than {a} ones.",
    "there is a {a} difference between a {n} that {vs} and a {n} that {vs}.",
    "{place}, {ns} {adv} {v} {ns} without anyone noticing.",
    "the reason {ns} {v} is not that they are {a}, but that they are {a}.",
    "{time}, I {vd} a {n} about {ns}, and it was {a}.",
    "a {a} {n} is one that {vs} {ns} {adv}.",
    "what {ns} {adv} {v} is a {n} that {vs} the {n}.",
    "nobody {vd} the {a} {n} until {name} {vd} it {place}.",
    "the {ns} {place} were {a}, and the {ns} were even more {a}.",
    "you can tell a lot about a {n} from the {ns} it {vs}.",
    "{name} and {name} {vd} {ns} together {time}.",
    "it is {a} to {v} {ns}, but it is {a} to {v} them {adv}.",
    "when a {n} {vs} a {n}, the {ns} around it {adv} {v} too.",
    "I used to think {ns} were {a}, but now I think they are merely {a}.",
    "the best {ns} {v} {a} {ns} long before anyone else does.",
    "{time}, the {ns} {place} {vd} a {a} {n}.",
    "one way to {v} a {n} is to ask what {ns} it would {v}.",
    "a {n} that nobody {vs} is {adv} a {a} {n}.",
];

const NOUNS: &[(&str, &str)] = &[
    ("idea", "ideas"),
    ("startup", "startups"),
    ("essay", "essays"),
    ("city", "cities"),
    ("founder", "founders"),
    ("investor", "investors"),
    ("program", "programs"),
    ("language", "languages"),
    ("school", "schools"),
    ("problem", "problems"),
    ("question", "questions"),
    ("company", "companies"),
    ("product", "products"),
    ("book", "books"),
    ("painter", "painters"),
    ("hacker", "hackers"),
    ("teacher", "teachers"),
    ("student", "students"),
    ("town", "towns"),
    ("garden", "gardens"),
    ("river", "rivers"),
    ("window", "windows"),
    ("friend", "friends"),
    ("habit", "habits"),
    ("mistake", "mistakes"),
    ("experiment", "experiments"),
    ("machine", "machines"),
    ("tool", "tools"),
    ("rule", "rules"),
    ("story", "stories"),
    ("market", "markets"),
    ("meeting", "meetings"),
    ("office", "offices"),
    ("library", "libraries"),
    ("project", "projects"),
    ("design", "designs"),
    ("painting", "paintings"),
    ("theory", "theories"),
    ("detail", "details"),
    ("neighbor", "neighbors"),
    ("customer", "customers"),
    ("draft", "drafts"),
    ("office worker", "office workers"),
    ("map", "maps"),
    ("bridge", "bridges"),
    ("recipe", "recipes"),
];

const ADJECTIVES: &[&str] = &[
    "good",
    "bad",
    "small",
    "large",
    "quiet",
    "ambitious",
    "careful",
    "strange",
    "ordinary",
    "surprising",
    "difficult",
    "simple",
    "useful",
    "boring",
    "curious",
    "patient",
    "early",
    "late",
    "obvious",
    "subtle",
    "valuable",
    "fragile",
    "serious",
    "awkward",
    "elegant",
    "expensive",
    "cheap",
    "modest",
    "unusual",
    "familiar",
    "risky",
    "gentle",
    "clumsy",
    "brilliant",
    "restless",
    "invisible",
];

const VERBS: &[(&str, &str, &str)] = &[
    ("build", "builds", "built"),
    ("write", "writes", "wrote"),
    ("learn", "learns", "learned"),
    ("notice", "notices", "noticed"),
    ("change", "changes", "changed"),
    ("start", "starts", "started"),
    ("ignore", "ignores", "ignored"),
    ("explain", "explains", "explained"),
    ("discover", "discovers", "discovered"),
    ("fix", "fixes", "fixed"),
    ("make", "makes", "made"),
    ("find", "finds", "found"),
    ("try", "tries", "tried"),
    ("want", "wants", "wanted"),
    ("choose", "chooses", "chose"),
    ("avoid", "avoids", "avoided"),
    ("imagine", "imagines", "imagined"),
    ("measure", "measures", "measured"),
    ("describe", "describes", "described"),
    ("understand", "understands", "understood"),
    ("follow", "follows", "followed"),
    ("copy", "copies", "copied"),
    ("improve", "improves", "improved"),
    ("sell", "sells", "sold"),
    ("forget", "forgets", "forgot"),
    ("question", "questions", "questioned"),
];

const ADVERBS: &[&str] = &[
    "usually",
    "rarely",
    "often",
    "quietly",
    "eventually",
    "gradually",
    "surprisingly",
    "almost always",
    "never quite",
    "sometimes",
    "deliberately",
    "slowly",
];

const NAMES: &[&str] = &[
    "Alice", "Marcus", "Priya", "Jonas", "Elena", "Tomas", "Mei", "Omar", "Grace", "Victor",
    "Hannah", "Ravi", "Sofia", "Daniel",
];

const TIMES: &[&str] = &[
    "in the spring",
    "after a few years",
    "by the end of the week",
    "in the old days",
    "at first",
    "later on",
    "for a long time",
    "one summer",
    "during the winter",
    "the next morning",
];

const PLACES: &[&str] = &[
    "in a small town",
    "at the office",
    "in the library",
    "near the river",
    "in most cities",
    "at school",
    "in the garden",
    "on the train",
    "in the kitchen",
];

const OPENERS: &[&str] = &[
    "",
    "",
    "",
    "",
    "",
    "But ",
    "And ",
    "So ",
    "Of course, ",
    "In practice, ",
    "Oddly enough, ",
];

/// Key words, separate from the prose lists.
const KEY_ADJECTIVES: &[&str] = &[
    "fuzzy", "brave", "silent", "amber", "crooked", "velvet", "hollow", "rusty", "frozen",
    "golden", "nimble", "sleepy", "tangled", "wooden", "bitter", "shiny", "lonely", "purple",
    "humble", "windy", "dusty", "mellow", "spicy", "rapid", "ancient", "cozy", "feral", "jagged",
    "lucky", "misty",
];

const KEY_NOUNS: &[&str] = &[
    "lantern", "harbor", "pebble", "compass", "walrus", "thimble", "orchard", "kettle", "falcon",
    "meadow", "saddle", "anchor", "beacon", "cactus", "dolphin", "ember", "glacier", "hammock",
    "igloo", "jigsaw", "ladder", "mitten", "nectar", "oyster", "parrot", "quill", "raccoon",
    "satchel", "tornado", "violin",
];

pub(super) fn generate(rng: &mut Rng, target_bytes: usize) -> Generated {
    let key = format!("{}-{}", rng.pick(KEY_ADJECTIVES), rng.pick(KEY_NOUNS));
    let value = rng.range(1_000_000, 9_999_999).to_string();
    let sentence = format!("One of the special magic numbers for {key} is: {value}.");

    // The context is haystack + needle + one space + a final newline.
    let budget = target_bytes.saturating_sub(sentence.len() + 2);
    let (haystack, starts) = haystack(rng, budget);
    let offset = starts[rng.index(starts.len())];

    let mut context = String::with_capacity(haystack.len() + sentence.len() + 2);
    context.push_str(&haystack[..offset]);
    context.push_str(&sentence);
    context.push(' ');
    context.push_str(&haystack[offset..]);
    context.push('\n');

    Generated {
        kind: "single_needle",
        query: format!(
            "What is the special magic number for {key} mentioned in the provided text?"
        ),
        context,
        expected: Expected::Contains(value.clone()),
        needle: Some(Needle {
            key,
            value,
            sentence,
            offset,
        }),
    }
}

/// Prose of about `budget` bytes (within half a sentence), and the byte
/// offsets where its sentences start.
fn haystack(rng: &mut Rng, budget: usize) -> (String, Vec<usize>) {
    let mut text = String::with_capacity(budget + 256);
    let mut starts = vec![0];
    let mut sentence = String::with_capacity(256);
    let mut left_in_paragraph = rng.range(4, 9);
    loop {
        sentence.clear();
        render_sentence(rng, &mut sentence);
        let separator = match (text.is_empty(), left_in_paragraph) {
            (true, _) => "",
            (false, 0) => "\n\n",
            _ => " ",
        };
        let grown = separator.len() + sentence.len();
        // Stop when one more sentence would land further from the budget.
        if text.len() + grown / 2 > budget && !text.is_empty() {
            break;
        }
        if left_in_paragraph == 0 {
            left_in_paragraph = rng.range(4, 9);
        }
        left_in_paragraph -= 1;
        text.push_str(separator);
        if !text.is_empty() {
            starts.push(text.len());
        }
        text.push_str(&sentence);
    }
    (text, starts)
}

fn render_sentence(rng: &mut Rng, out: &mut String) {
    let opener = OPENERS[rng.index(OPENERS.len())];
    out.push_str(opener);
    let template = *rng.pick(TEMPLATES);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("closed placeholder");
        let word = match &rest[open + 1..close] {
            "n" => rng.pick(NOUNS).0,
            "ns" => rng.pick(NOUNS).1,
            "a" => *rng.pick(ADJECTIVES),
            "v" => rng.pick(VERBS).0,
            "vs" => rng.pick(VERBS).1,
            "vd" => rng.pick(VERBS).2,
            "adv" => *rng.pick(ADVERBS),
            "name" => *rng.pick(NAMES),
            "time" => *rng.pick(TIMES),
            "place" => *rng.pick(PLACES),
            other => unreachable!("unknown placeholder {other}"),
        };
        if takes_an(word) && (out.ends_with(" a ") || out == "a ") {
            out.insert(out.len() - 1, 'n');
        }
        out.push_str(word);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    capitalize_first(out);
}

/// Whether the indefinite article before `word` is "an".
fn takes_an(word: &str) -> bool {
    let w = word.as_bytes();
    match w.first() {
        Some(b'a' | b'e' | b'i' | b'o') => true,
        Some(b'u') => !(word.starts_with("us") || word.starts_with("uni")),
        _ => false,
    }
}

fn capitalize_first(s: &mut str) {
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haystack_has_no_digits_hyphens_or_magic() {
        let mut rng = Rng::new(5);
        let (text, starts) = haystack(&mut rng, 50_000);
        assert!(!text.bytes().any(|b| b.is_ascii_digit() || b == b'-'));
        assert!(!text.contains("magic"));
        assert!(text.len().abs_diff(50_000) < 200);
        for &s in &starts {
            assert!(
                text[s..].starts_with(|c: char| c.is_ascii_uppercase()),
                "{s}"
            );
        }
    }

    #[test]
    fn articles_agree_with_the_next_word() {
        let mut rng = Rng::new(9);
        let (text, _) = haystack(&mut rng, 100_000);
        for bad in [
            " a ambitious",
            " a early",
            " a unusual",
            " an useful",
            " a obvious",
        ] {
            assert!(!text.contains(bad), "{bad}");
        }
    }
}
