"""CLIP's byte-pair encoding, for counting the tokens of a phrase without torch.

A prompt method's ``ctx_init`` must be exactly ``n_ctx`` tokens, which ``sweeper validate`` checks.
open_clip's ``SimpleTokenizer`` counts them, but importing any part of open_clip imports torch
(about two seconds), so this module reads the same vocabulary file that open_clip ships (located
without importing the package) and applies the same cleaning, pre-tokenisation and merges.
``tests/unit/test_bpe.py`` holds the two to the same counts.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import itertools
from functools import lru_cache
from pathlib import Path

import regex

VOCABULARY_FILE = "bpe_simple_vocab_16e6.txt.gz"
# CLIP uses the first 49,152 - 256 - 2 merges of the file (its first line is a header): with the
# 256 byte symbols, their 256 end-of-word forms and the 2 special tokens they make the vocabulary.
MERGES = 49152 - 256 - 2
SPECIAL_TOKENS = ("<start_of_text>", "<end_of_text>")
END_OF_WORD = "</w>"
# Pre-tokens: a special token, an English contraction, a run of letters, one digit, or a run of
# other non-space characters (CLIP's pattern). Ignoring case matters even on lower-cased text:
# the long s "ſ" matches "s".
PRE_TOKEN = regex.compile(
    "|".join(SPECIAL_TOKENS) + r"|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)


def vocabulary_path() -> Path:
    """open_clip's BPE vocabulary file, found without executing the package (which imports torch)."""
    found = importlib.util.find_spec("open_clip")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("open_clip is not installed: its BPE vocabulary file cannot be found")
    return Path(next(iter(found.submodule_search_locations))) / VOCABULARY_FILE


@lru_cache(maxsize=1)
def merge_ranks() -> dict[tuple[str, str], int]:
    """Each mergeable symbol pair and its priority (lower merges first)."""
    lines = gzip.decompress(vocabulary_path().read_bytes()).decode("utf-8").split("\n")
    pairs = (tuple(line.split()) for line in lines[1 : MERGES + 1])
    return {(pair[0], pair[1]): rank for rank, pair in enumerate(pairs)}


@lru_cache(maxsize=1)
def byte_symbols() -> tuple[str, ...]:
    """The printable character standing for each byte value (GPT-2's reversible byte map):
    printable Latin-1 bytes stand for themselves, the others for code points from 256 on."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols: dict[int, str] = {b: chr(b) for b in printable}
    spare = 256
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(spare)
            spare += 1
    return tuple(symbols[b] for b in range(256))


def clean(text: str) -> str:
    """CLIP's text cleaning: fix mojibake, unescape HTML twice, collapse whitespace, lower-case."""
    import ftfy  # imported on first use: the vocabulary check is its only caller in a driver

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


@lru_cache(maxsize=4096)
def pieces(word: str) -> int:
    """How many vocabulary entries the byte-mapped pre-token ``word`` becomes after the merges."""
    if word in SPECIAL_TOKENS:
        return 1
    ranks = merge_ranks()
    never = len(ranks)
    symbols = [*word[:-1], word[-1] + END_OF_WORD]
    while len(symbols) > 1:
        target = min(itertools.pairwise(symbols), key=lambda pair: ranks.get(pair, never))
        if target not in ranks:
            break
        # Merge every occurrence of the best-ranked pair, left to right, without overlaps.
        merged: list[str] = []
        i = 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == target:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return len(symbols)


def count_tokens(text: str) -> int:
    """The number of CLIP BPE tokens of ``text`` (start and end tokens not counted), as
    ``open_clip.tokenizer.SimpleTokenizer().encode(text)`` gives them."""
    table = byte_symbols()
    return sum(pieces("".join(table[b] for b in word.encode("utf-8"))) for word in PRE_TOKEN.findall(clean(text)))
