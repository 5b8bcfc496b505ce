#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into SEEDS/<target>/ (scripts/fuzz.sh calls it).

Seeds are the project's own payloads, so that the fuzzers start from inputs each function
really gets: the bodies and events of events/<function>/*.json, the lines of
functions/compute/tests/data/*.ndjson, plus a few edge cases the promise names (the 64 KiB
limits, deep nesting). Deterministic: the same files give the same seeds.

Usage: fuzz/seeds.py SEEDS
"""

import base64
import gzip
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
DATASETS = ROOT / "functions" / "compute" / "tests" / "data"
MAX_BODY = 64 * 1024  # request_api::api::MAX_BODY_BYTES
MAX_LINE = 64 * 1024  # compute::features::MAX_LINE_BYTES


def write(seeds, target, name, data):
    folder = seeds / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / name).write_bytes(data)


def events(function):
    for path in sorted((EVENTS / function).glob("*.json")):
        yield path.stem, json.loads(path.read_text())


def http_request(event):
    """An API Gateway v2 event in the http_request target's format."""
    method = event["requestContext"]["http"]["method"]
    query = event.get("rawQueryString") or ""
    line = f"{method} {event['rawPath']}" + (f"?{query}" if query else "")
    headers = "".join(f"{k}: {v}\n" for k, v in (event.get("headers") or {}).items())
    body = (event.get("body") or "").encode()
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return f"{line}\n{headers}\n".encode() + body


def main(seeds):
    seeds = pathlib.Path(seeds)

    for i, text in enumerate(["shop-42", "a", "A.b_c:d-9", "x" * 128, "x" * 129, "a/b", "ü", "", "\0"]):
        write(seeds, "subject_id", f"id-{i}", text)

    for name, event in events("request-api"):
        write(seeds, "http_request", name, http_request(event))
    big = b'{"subject_ids":["shop-1"]' + b" " * (MAX_BODY - 26) + b"}"
    write(seeds, "http_request", "body-at-limit", b"POST /v1/scores/batch-get\n\n" + big)
    write(seeds, "http_request", "body-over-limit", b"POST /v1/scores/batch-get\n\n" + big + b" ")
    nested = b'{"subject_ids":' + b"[" * 200 + b"]" * 200 + b"}"
    write(seeds, "http_request", "nested", b"POST /v1/scores/batch-get\ncontent-type: application/json\n\n" + nested)

    for name, event in events("compute"):
        for i, record in enumerate(event["Records"]):
            write(seeds, "compute_message", f"{name}-{i}", record["body"])

    for name, event in events("metadata-sync"):
        for i, record in enumerate(event["Records"]):
            write(seeds, "s3_event", f"{name}-{i}", record["body"])

    for path in sorted((EVENTS / "notifier").glob("*.json")):
        write(seeds, "stream_record", path.stem, path.read_bytes())

    # dataset: byte 0 is the read size - 1, byte 1 odd for gzip; then the object.
    for path in sorted(DATASETS.glob("*.ndjson")):
        data = path.read_bytes()
        write(seeds, "dataset", f"{path.stem}-plain", b"\xff\x00" + data)
        write(seeds, "dataset", f"{path.stem}-gzip-chunks-of-1", b"\x00\x01" + data)
        for i, line in enumerate(data.splitlines()):
            write(seeds, "dataset", f"{path.stem}-line-{i}", b"\x06\x00" + line + b"\n")
    line = DATASETS.joinpath("golden-typical.ndjson").read_bytes().splitlines()[0]
    write(seeds, "dataset", "line-at-limit", b"\x3f\x00" + line.ljust(MAX_LINE) + b"\r\n")
    write(seeds, "dataset", "line-over-limit", b"\x3f\x00" + line.ljust(MAX_LINE + 1) + b"\n" + line)
    write(seeds, "dataset", "gzip-in-plain", b"\x00\x00" + gzip.compress(line))


if __name__ == "__main__":
    main(sys.argv[1])
