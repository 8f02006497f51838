#!/usr/bin/python3
"""Builds the demo model's training data from Debian packages (public-domain text), always the
same for the same package versions: the King James Bible (bible-kjv), the fortune cookie files
(fortunes, fortunes-min), and chat examples made from them plus the hand-written chat.jsonl.

  prepare.py OUT_DIR    writes text.txt (training text, documents split by form-feed lines),
                        heldout.txt (documents kept out of training, for perplexity tables)
                        and chat-gen.jsonl (generated conversations)
"""
import glob
import json
import os
import random
import re
import subprocess
import sys

SYSTEM = "You are hearth's demo model, a small language model trained on this computer."


def bible_chapters():
    out = subprocess.run(["bible", "Gen1:1-Rev22:21"], capture_output=True, text=True,
                         check=True).stdout
    chapters, cur, verse = [], None, None
    for line in out.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        h = re.match(r"^([0-9A-Z][A-Za-z0-9 ]*) (\d+)$", line)
        if m and cur is not None:
            cur["verses"].append([int(m.group(1)), m.group(2)])
        elif h and not line.startswith(" "):
            cur = {"book": h.group(1), "chapter": int(h.group(2)), "verses": []}
            chapters.append(cur)
        elif cur is not None and cur["verses"]:
            cur["verses"][-1][1] += " " + line.strip()
    return chapters


def fortunes():
    items = []
    skip = {"art", "ascii-art", "translate-me", "perl", "linuxcookie", "definitions"}
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        name = os.path.basename(path)
        if "." in name or name in skip or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for item in text.split("\n%\n"):
            item = item.strip("\n%")
            if 20 <= len(item) <= 600 and "\t" not in item:
                items.append(item)
    return items


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1)
    chapters = bible_chapters()
    cookies = fortunes()
    text, held = [], []
    for i, ch in enumerate(chapters):
        doc = f"{ch['book']} {ch['chapter']}\n" + "\n".join(v for _, v in ch["verses"])
        (held if i % 40 == 39 else text).append(doc)
    for i, c in enumerate(cookies):
        (held if i % 40 == 39 else text).append(c)
    rng.shuffle(text)
    with open(os.path.join(out, "text.txt"), "w") as f:
        f.write("\n\f\n".join(text) + "\n")
    with open(os.path.join(out, "heldout.txt"), "w") as f:
        f.write("\n\n".join(held) + "\n")

    convs = []

    def add(q, a, system=False):
        msgs = [{"role": "system", "content": SYSTEM}] if system else []
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        convs.append({"messages": msgs})

    asks = ["Tell me a fortune.", "Give me a fortune cookie.", "Say something wise.",
            "Tell me something funny.", "Give me a quote.", "Share a saying."]
    short = [c for i, c in enumerate(cookies) if i % 40 != 39 and len(c) <= 300]
    for c in rng.sample(short, min(1500, len(short))):
        add(rng.choice(asks), c, rng.random() < 0.3)
    verses = [(ch["book"], ch["chapter"], n, v) for i, ch in enumerate(chapters) if i % 40 != 39
              for n, v in ch["verses"]]
    for book, chap, n, v in rng.sample(verses, 1500):
        q = rng.choice([f"What does {book} {chap}:{n} say?", f"Quote {book} {chap}:{n}.",
                        f"Read me {book} chapter {chap}, verse {n}."])
        add(q, f"{book} {chap}:{n} says: {v}", rng.random() < 0.3)
    for book, chap, n, v in rng.sample(verses, 800):
        words = v.split()
        if len(words) < 8:
            continue
        cut = len(words) // 2
        add("Finish this verse: " + " ".join(words[:cut]), " ".join(words[cut:]))
    rng.shuffle(convs)
    with open(os.path.join(out, "chat-gen.jsonl"), "w") as f:
        for c in convs:
            f.write(json.dumps(c) + "\n")
    print(f"{len(text)} training documents, {len(held)} held out, {len(convs)} generated chats")


if __name__ == "__main__":
    main()
