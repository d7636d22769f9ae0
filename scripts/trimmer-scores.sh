#!/bin/sh
# Scores reference reply trimmers on the reply-complaints corpus, per class, the way
# crates/postern-mail/tests/mail/reply_complaints.rs scores postern's two modes: a case is right
# when the trimmer's result, without leading and trailing whitespace, is the expected text.
#
# Trimmers, each used when it is installed (missing ones are reported and skipped):
#   email_reply_trimmer  Ruby gem (Debian: apt-get install ruby ruby-email-reply-trimmer)
#   email_reply_parser   PyPI email_reply_parser (GitHub's parser, Zapier's Python port)
#   talon                PyPI talon (mailgun; quotations.extract_from_plain)
#
# Usage: scripts/trimmer-scores.sh [corpus-dir]   (default testdata/reply-complaints)
set -eu
corpus=${1:-"$(dirname "$0")/../testdata/reply-complaints"}
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

if command -v ruby >/dev/null 2>&1 && ruby -e 'require "email_reply_trimmer"' 2>/dev/null; then
    ruby -e '
        require "email_reply_trimmer"
        require "json"
        dir = ARGV[0]
        out = {}
        File.readlines(File.join(dir, "index.tsv")).drop(1).each do |row|
          id = row.split("\t")[0]
          text = File.read(File.join(dir, "cases", id + ".txt"), encoding: "UTF-8")
          out[id] = (EmailReplyTrimmer.trim(text) || "")
        end
        puts JSON.generate(out)
    ' "$corpus" > "$results/email_reply_trimmer.json"
else
    echo "email_reply_trimmer: not installed (apt-get install ruby ruby-email-reply-trimmer)" >&2
fi

python3 - "$corpus" "$results" <<'PY'
import json, os, sys
corpus, results = sys.argv[1], sys.argv[2]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(corpus, "index.tsv"), encoding="utf-8")][1:]
cases = []
for cid, cls, lang, url in rows:
    text = open(os.path.join(corpus, "cases", cid + ".txt"), encoding="utf-8").read()
    exp = open(os.path.join(corpus, "cases", cid + ".expected.txt"), encoding="utf-8").read()
    cases.append((cid, cls, text, exp[:-1] if exp.endswith("\n") else exp))

trimmers = {}
path = os.path.join(results, "email_reply_trimmer.json")
if os.path.exists(path):
    got = json.load(open(path, encoding="utf-8"))
    trimmers["email_reply_trimmer"] = lambda cid, text: got.get(cid, "")
try:
    from email_reply_parser import EmailReplyParser
    trimmers["email_reply_parser"] = lambda cid, text: EmailReplyParser.parse_reply(text)
except ImportError:
    print("email_reply_parser: not installed (pip install email_reply_parser)", file=sys.stderr)
try:
    from talon import quotations
    trimmers["talon"] = lambda cid, text: quotations.extract_from_plain(text)
except Exception as e:  # talon's import pulls in many packages; any failure means "not here"
    print("talon: not usable (%s)" % e, file=sys.stderr)

names = list(trimmers)
table = {}
for cid, cls, text, exp in cases:
    row = table.setdefault(cls, [0] + [0] * len(names))
    row[0] += 1
    for i, name in enumerate(names):
        try:
            out = trimmers[name](cid, text) or ""
        except Exception:
            out = None
        if out is not None and out.strip() == exp.strip():
            row[i + 1] += 1
print("%-20s %5s" % ("class", "cases") + "".join(" %20s" % n for n in names))
total = [0] * (len(names) + 1)
for cls in sorted(table):
    row = table[cls]
    total = [a + b for a, b in zip(total, row)]
    print("%-20s %5d" % (cls, row[0]) + "".join(" %20d" % v for v in row[1:]))
print("%-20s %5d" % ("total", total[0]) + "".join(" %20d" % v for v in total[1:]))
PY
