#!/usr/bin/python3
"""experts_fixtures.py — fixtures for tests/test_experts.c.

  refingerprint IN OUT   copy the expert file IN to OUT with its "fingerprint" metadata changed, as an
                         expert trained on other base weights would carry
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def main():
    if sys.argv[1] == "refingerprint":
        src, dst = sys.argv[2], sys.argv[3]
        f = st.SafeFile(src)
        meta = dict(f.metadata)
        meta["fingerprint"] = "0123456789abcdef"
        st.save(dst, {k: f.get(k) for k in f.keys()}, metadata=meta)
    else:
        raise SystemExit("unknown command " + sys.argv[1])


main()
