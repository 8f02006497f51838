#!/usr/bin/env python3
"""Writes tests/data/tokenizer_corpus.json: the strings the tokenizer parity tests keep.

Deterministic (fixed seed). Categories: English, other languages and scripts, CJK, emoji and ZWJ
sequences, code with tabs and long whitespace runs, digits of every length, text that spells
special tokens, unusual Unicode (combining marks in both normal forms, zero-width characters,
BOM, NEL, line/paragraph separators, bidi marks, variation selectors, private use,
noncharacters, astral symbols, C0/C1 controls), whitespace shapes and random mixtures.
"""
import json, os, random

rng = random.Random(20261124)
out = []
add = out.append

english = [
    "Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they've done it, haven't they?", "DON'T SHOUT. I'LL listen, WE'VE heard.",
    "It's 5 o'clock somewhere", "rock 'n' roll", "'s 't 're 've 'm 'll 'd", "He said \"no\".",
    "e-mail: someone@example.com, web: https://example.org/path?q=1&r=2#frag",
    "Mr. O'Neil's dog's bone", "state-of-the-art, well-known, re-enter", "U.S.A. vs. U.K.",
    "What?! No way... really???", "Price: $1,234.56 (incl. 20% VAT)", "#hashtag @mention ~tilde^caret",
    "A sentence with    multiple   spaces.", "Trailing spaces   ", "   Leading spaces",
    "Tab\tseparated\tvalues", "Line one\nLine two\r\nLine three\rLine four",
    "CamelCaseIdentifiersLikeThis and snake_case_ones", "ALLCAPS lowercase MiXeD",
    "Don't you think it's weird that they'd rather've gone?", "lorem ipsum dolor sit amet " * 8,
    "a", "I", "Z", ".", ",", "!", "?", "''", "\"\"", "()", "[]{}", "<>", "--", "...", "—", "…",
]
for s in english: add(s)

languages = [
    "Le cœur a ses raisons que la raison ne connaît point.", "Größenwahn und Äpfel, Öl, Übermut; ß",
    "¿Dónde está la biblioteca? ¡Allí!", "Привет, как дела? Всё хорошо.", "Ελληνικά: γειά σου κόσμε",
    "مرحبا بالعالم، كيف حالك؟", "שלום עולם, מה שלומך?", "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีครับ ผมชื่ออเล็กซ์", "Xin chào thế giới, tiếng Việt có dấu", "안녕하세요 세계, 한국어 문장입니다.",
    "こんにちは世界、日本語の文章です。カタカナとひらがな", "你好，世界！今天是2026年8月13日", "繁體中文與简体中文混合",
    "Türkçe: İstanbul'da ığdır şişe", "Zażółć gęślą jaźń", "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "Íslenska: Þetta er ðæmi", "Հայերեն լեզու", "ქართული ენა", "Tiếng Việt: Đường phố", "ᐊᐃᓐᓇᐅᔭᖅ",
    "አማርኛ ቋንቋ", "தமிழ் மொழி", "తెలుగు భాష", "ಕನ್ನಡ ಭಾಷೆ", "മലയാളം ഭാഷ", "বাংলা ভাষা", "ગુજરાતી ભાષા",
    "ਪੰਜਾਬੀ ਭਾਸ਼ਾ", "සිංහල භාෂාව", "ລາວ", "ខ្មែរ", "မြန်မာဘာသာ", "ᠮᠣᠩᠭᠣᠯ", "བོད་ཡིག", "Ἀρχαῖα ἑλληνικά",
    "Kiswahili ni lugha", "Yorùbá èdè", "Hawaiʻi ʻōlelo", "Mixed: English, русский, 中文, العربية, हिन्दी",
]
for s in languages: add(s)

cjk = ["中文", "日本語", "한국어", "你好", "漢字テスト", "中文English混合Text", "数字123和文字", "全角　スペース",
       "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３", "半角ｶﾀｶﾅ", "「引用」『二重』【括弧】", "〇一二三四五六七八九十百千万億",
       "𠀀𠀁𪜀 (CJK extension B)", "龘靐齉", "我爱北京天安门。天安门上太阳升。", "ひらがなカタカナ漢字ｶﾀｶﾅ"]
for s in cjk: add(s)

emoji = ["🎉", "😀😃😄😁", "👍🏽 thumbs up medium", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🇺🇸🇯🇵🇩🇪 flags",
         "1️⃣ 2️⃣ #️⃣ keycaps", "❤️ vs ❤", "👩🏾‍💻 coder", "🧑‍🤝‍🧑", "emoji in text 🚀 launch 🌕 moon",
         "☕️🍕🍣🍺", "🫠🫶🪿 new emoji", "😀" * 10, "a😀b😀c", "🏴‍☠️", "👁️‍🗨️"]
for s in emoji: add(s)

code = [
    "def f(x):\n    return x * 2\n", "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "for (let i = 0; i < n; i++) { sum += a[i]; }", "{\"key\": \"value\", \"n\": [1, 2, 3], \"ok\": true}",
    "if x == 1:\n\tpass\nelif x != 2:\n\t\tpass\n", "    indented with four\n        and eight\n",
    "\t\t\ttabs\t\t\t", "x" + " " * 40 + "y", " " * 100, "\t" * 30, "\n" * 12, " \n \n \n",
    "SELECT * FROM users WHERE id = 1 AND name LIKE '%bob%';", "#include <stdio.h>\n#define MAX(a,b) ((a)>(b)?(a):(b))",
    "<html><body><div class=\"x\">Hi</div></body></html>", "a => b; c -> d; e >= f; g != h; i === j",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; }", "x += 1; y -= 2; z *= 3; w /= 4; v %= 5;",
    "// comment\n/* block */\n# shell\n-- sql", "path/to/file.txt C:\\Windows\\System32", "a\\nb\\tc",
    "```python\nprint('hi')\n```", "$ ls -la | grep foo && echo done || exit 1", "0x1F 0b1010 0o777 1e-9 3.14f",
    "lambda x: x**2 if x > 0 else -x", "    \n\t\n  \t  \n", "trailing tab\t\nnext", "mixed \t \t indentation",
    "class Foo:\n    def __init__(self):\n        self.x = [i for i in range(10)]\n",
]
for s in code: add(s)

for n in range(1, 41):
    add("".join(rng.choice("0123456789") for _ in range(n)))
for s in ["0", "00", "007", "1,000,000", "3.14159", "-42", "+7", "1e10", "12:34:56", "2026-11-24",
          "v1.2.3", "192.168.0.1", "$100", "50%", "1/2", "½ ⅓ ¼", "١٢٣ Arabic-Indic", "१२३ Devanagari",
          "一二三", "①②③", "Ⅷ Roman", "x²+y³", "123abc456def", "abc123", "1 2 3 4 5", "9" * 50]:
    add(s)

specials = ["<|im_start|>user\nhi<|im_end|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
            "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>system<|end_header_id|>",
            "<start_of_turn>user\nhello<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>",
            "<|im_", "|im_start|", "<<|im_end|>>", "<|im_start|><|im_start|>", "text<|im_end|>text",
            "<think>reasoning</think>answer", "<tool_call>{}</tool_call>", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
            "<unused0><unused99>", "[multimodal]", "<start_of_image>", "<|reserved_special_token_5|>",
            "< |im_start| >", "<|IM_START|>", "<0x41>", "▁▁ leading", "▁", "<s></s>", "[INST] hi [/INST]"]
for s in specials: add(s)

unusual = [
    "e\u0301 vs \u00e9", "Cafe\u0301", "n\u0303", "A\u030a\u0301", "\u1e9b\u0323", "\u0041\u0308\u0304",
    "zero\u200bwidth\u200cnon\u200djoiner", "\ufeffBOM at start", "mid\ufeffBOM", "NEL\u0085line",
    "line\u2028sep\u2029para", "\u200fRTL mark\u200e LTR", "\u202eoverride\u202c", "var\ufe0fsel\ufe0e",
    "\ue000\ue001 private use", "\uf8ff apple", "\ufffd replacement", "\ufffe\uffff noncharacters",
    "\U0001d573\U0001d58a\U0001d58e math", "\U0001f600\U0001f3fb", "\U000e0067 tag", "\U0010fffd plane 16",
    "ctrl\u0001\u0002\u0003\u001f", "del\u007f", "c1\u0080\u009f", "\u00a0nbsp\u00a0", "\u2003em\u2002en\u2009thin",
    "\u3000ideographic space", "\u180e mongolian vs", "\u00ad soft hyphen", "ﬁ ligature ﬂ", "Ⅸ ℌ ℍ ℕ",
    "\u0130 \u0131 \u017f \u212a", "'\u017f 'S \u212a", "ǅ titlecase", "ß ẞ", "\u0345 ypogegrammeni",
    "Å (angstrom) Å", "한\u1100\u1161 jamo", "\u1100\u1161\u11a8", "क्षि", "\u0928\u093f", "ﷺ", "\u2063invisible",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🄰🄱", "⒜⒝", "\u3099\u309a", "ｶﾞ", "ヴ", "\u0d4c", "\u0f77",
]
for s in unusual: add(s)

ws = ["", " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", " \t ", "a ", " a", "a  b", "a\n\nb", "a \n b", " \n", "\n ",
      "  \n  \n", "x\r\r\ny", "end.\n", "\v\f form feed"]
for s in ws: add(s)

pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + list(" \t\n.,;:'\"!?-_/\\()[]{}<>|@#$%^&*+=~`")
        + list("éüñçßøåæœ") + list("中文日本語한국어") + list("αβγδ") + list("абвгд") + ["😀", "👍🏽", "🎉", "\u200d", "\u0301", "\ufeff"]
        + ["<|im_start|>", "<|eot_id|>", "<start_of_turn>", "'s", "'ll", "  ", "    ", "\r\n"])
while len(out) < 560:
    n = rng.randint(1, 60)
    add("".join(rng.choice(pool) for _ in range(n)))

path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tokenizer_corpus.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=0)
    f.write("\n")
print(f"{len(out)} strings -> {os.path.normpath(path)}")
