# Regenerates testdata/splits.json: the expected pre-tokenizer splits, made
# with Python's `regex` module (which supports the lookahead Go's regexp
# lacks), an implementation independent of split.go.
#   python3 testdata/gen_splits.py > testdata/splits.json
import json, regex

PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
TEXTS = [
    "Hello world",
    "Hello, world! How's it going? I'LL say WE'RE fine.",
    "  leading and trailing spaces  ",
    "a   b\t\tc\n\nd \n e",
    "line one\r\nline two\n\n\n  indented\n",
    "numbers 1234567 and 3.14159, 2026-11-26",
    "naïve café — 日本語のテキスト, Ελληνικά, emoji 🙂🚀!",
    "= = Reception = =",
    "tabs\tand\u00a0nbsp\u2003em-space",
    "'s 't 're 've 'm 'll 'd 'S 'RE don't",
    "x=1;y=2;;;  ???!!! ...\n",
    "Ⅻ roman ½ fractions ٣ arabic-indic",
    "",
    " ",
    "\n",
    "a\n",
    "end with space ",
]
out = [{"text": t, **{k: regex.findall(p, t) for k, p in PATTERNS.items()}} for t in TEXTS]
print(json.dumps(out, ensure_ascii=False, indent=1))
