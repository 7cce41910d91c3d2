"""Writes the benchmark inputs: a needle-in-a-haystack file and a records file.

    python3 haystack.py needle SIZE SEED OUT   # OUT, plus OUT.json: the needle
    python3 haystack.py records N OUT          # N lines "record i: ... is i"

The haystack is natural-ish English prose (sentences drawn from templates
and a small vocabulary), exactly SIZE bytes, ASCII, one sentence group per
line, with a single line "The special magic number for KEY is: NUMBER."
at a seeded depth between 5% and 95%. The same SIZE and SEED always give
the same bytes. To stay fast (1 GiB in a few seconds) it writes a handful
of distinct 1 MiB blocks over and over, each rotated at a seeded line
boundary, so no two neighbouring blocks read alike.
"""

import json
import os
import random
import sys

BLOCKS = 8
BLOCK_BYTES = 1 << 20

NOUNS = """harbor river garden letter window market teacher engine village winter
mountain student kitchen bridge doctor station library forest question island
captain painter morning evening journey council machine farmer lantern meadow
signal theory pattern harvest ledger orchard voyage workshop chapter pilgrim
merchant valley canal tower record witness neighbor storm compass mirror""".split()
ADJECTIVES = """quiet ancient bright narrow patient careful distant heavy simple
golden restless crowded hollow gentle steady curious faded northern silent
wooden modest stubborn hidden ordinary sudden early late final small""".split()
VERBS = """carried followed repaired described watched measured crossed opened
counted remembered painted visited built questioned guarded traded collected
noticed explained borrowed returned studied""".split()
ADVERBS = """slowly often rarely quietly carefully again nearly always barely
eventually""".split()
PREPS = "near beyond under across behind beside toward along".split()
NAMES = """Ada Bruno Clara Dmitri Elena Farid Greta Hugo Ines Jonas Kiri Lena
Mateo Nora Oskar Priya Quentin Rosa Soren Talia""".split()
KEY_WORDS = """amber cobalt willow falcon granite juniper marble saffron thistle
velvet cedar copper""".split()


def sentence(rng):
    n = rng.choice
    forms = (
        lambda: f"The {n(ADJECTIVES)} {n(NOUNS)} {n(VERBS)} the {n(NOUNS)} {n(PREPS)} the {n(NOUNS)}.",
        lambda: f"{n(NAMES)} {n(ADVERBS)} {n(VERBS)} a {n(ADJECTIVES)} {n(NOUNS)}.",
        lambda: f"In the {n(ADJECTIVES)} {n(NOUNS)}, {n(NAMES)} {n(VERBS)} what the {n(NOUNS)} had {n(VERBS)}.",
        lambda: f"Nobody {n(VERBS)} the {n(NOUNS)} until {n(NAMES)} came {n(PREPS)} the {n(ADJECTIVES)} {n(NOUNS)}.",
        lambda: f"{rng.randint(2, 97)} {n(NOUNS)}s were {n(VERBS)} {n(ADVERBS)} that year.",
    )
    return n(forms)()


def block(rng):
    """About BLOCK_BYTES of lines, each 1-5 sentences."""
    lines, size = [], 0
    while size < BLOCK_BYTES:
        line = " ".join(sentence(rng) for _ in range(rng.randint(1, 5))) + "\n"
        lines.append(line.encode())
        size += len(lines[-1])
    return b"".join(lines)


def needle(size, seed, out):
    rng = random.Random(seed)
    key = f"{rng.choice(KEY_WORDS)}-{rng.choice(NOUNS)}"
    number = rng.randint(1_000_000, 9_999_999)
    line = f"The special magic number for {key} is: {number}.\n".encode()
    blocks = [block(rng) for _ in range(BLOCKS)]
    depth = rng.uniform(0.05, 0.95)
    target = int((size - len(line)) * depth)
    budget = size - len(line)  # haystack bytes, needle excluded
    written = 0  # haystack bytes so far
    needle_offset = None
    with open(out, "wb") as f:
        while written < budget:
            b = blocks[rng.randrange(BLOCKS)]
            cut = b.index(b"\n", rng.randrange(len(b) - 1)) + 1
            piece = b[cut:] + b[:cut]
            if written + len(piece) >= budget:
                piece = piece[: budget - written - 1] + b"\n"
            if needle_offset is None and written + len(piece) > target:
                at = piece.find(b"\n", target - written) + 1 or len(piece)
                f.write(piece[:at])
                needle_offset = written + at
                f.write(line)
                f.write(piece[at:])
            else:
                f.write(piece)
            written += len(piece)
    assert os.path.getsize(out) == size, (os.path.getsize(out), size)
    info = {
        "key": key,
        "number": number,
        "offset": needle_offset,
        "depth": round(needle_offset / size, 4),
        "line": line.decode().strip(),
        "size": size,
        "seed": seed,
    }
    with open(out + ".json", "w") as f:
        json.dump(info, f, indent=1)


def records(n, out):
    with open(out, "w") as f:
        for i in range(n):
            f.write(f"record {i}: a delivery logged by the {NOUNS[i % len(NOUNS)]} desk; its id is {i}\n")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "needle":
        needle(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "records":
        records(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)
