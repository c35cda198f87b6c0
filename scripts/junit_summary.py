"""Adds up pytest JUnit reports and prints 'python: N passed, N failed, N skipped'.
Exits non-zero when a report is missing or records no test."""

import sys
import xml.etree.ElementTree as ET


def counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = failed = skipped = 0
    for s in suites:
        total += int(s.get("tests", 0))
        failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return total, failed, skipped


def main(paths):
    if not paths:
        print("python: no test reports were written", file=sys.stderr)
        return 1
    total = failed = skipped = 0
    for p in paths:
        t, f, s = counts(p)
        if t == 0:
            print("python: %s ran no test" % p, file=sys.stderr)
            return 1
        total, failed, skipped = total + t, failed + f, skipped + s
    print("python: %d passed, %d failed, %d skipped" % (total - failed - skipped, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
