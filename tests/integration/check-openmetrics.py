#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Validates OpenMetrics text on stdin with the reference parser.

Usage: check-openmetrics.py [--prometheus] [FAMILY...] < text

Parses the whole exposition strictly with prometheus_client's OpenMetrics
parser (Debian: python3-prometheus-client), which rejects anything the
format forbids: a missing "# EOF", samples of a family split up, a counter
without _total, bad label escaping, non-cumulative histogram buckets, a
histogram without its +Inf bucket, and so on. Then checks that every FAMILY
named on the command line is there (family names as the parser reports
them: counters without _total, histograms without _bucket/_count/_sum).

With --prometheus the text is the Prometheus text format 0.0.4 instead
(what node_exporter's textfile collector reads), parsed with
prometheus_client's parser for it, and every family must be typed: a
counter whose TYPE line does not name its samples comes out untyped.

Prints "N families" and exits 0 if all is well; prints the reason on
stderr and exits 1 otherwise (2 if the parser is not installed).
"""
import sys

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    from prometheus_client.parser import text_string_to_metric_families as prometheus_families
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"check-openmetrics: {e} (install python3-prometheus-client)", file=sys.stderr)
    sys.exit(2)


def main(argv):
    prometheus = len(argv) > 1 and argv[1] == "--prometheus"
    wanted = argv[2:] if prometheus else argv[1:]
    parse = prometheus_families if prometheus else text_string_to_metric_families
    text = sys.stdin.read()
    try:
        families = list(parse(text))
    except Exception as e:  # the parser raises ValueError and friends
        print(f"check-openmetrics: invalid {'Prometheus text' if prometheus else 'OpenMetrics'}: "
              f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    untyped = [f.name for f in families if f.type in ("unknown", "untyped")]
    if prometheus and untyped:
        print("check-openmetrics: untyped families: " + " ".join(untyped), file=sys.stderr)
        return 1
    names = {f.name for f in families}
    missing = [n for n in wanted if n not in names]
    if missing:
        print("check-openmetrics: missing families: " + " ".join(missing), file=sys.stderr)
        print("check-openmetrics: present: " + " ".join(sorted(names)), file=sys.stderr)
        return 1
    empty = [f.name for f in families if not f.samples]
    if empty:
        print("check-openmetrics: families without samples: " + " ".join(empty),
              file=sys.stderr)
        return 1
    print(f"{len(families)} families")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
