"""Look for secrets in a packet capture.

Usage: qa_capture_check.py CAPTURE; reads {"secrets": {name: value}, "markers": {name: value}} as JSON on
stdin, so that no value is on a command line. Prints one JSON line with the names of what was found in the
capture's bytes (never a value): the secrets, JSON Web Tokens, unsealed Airflow workloads, Temporal calls about
task attempts in clear, and the markers
(plain text sent on purpose, which proves the capture saw the traffic). Also counts the packets per
TCP port pair of the test network, so that a capture that saw nothing cannot pass.
"""

import json
import re
import struct
import sys

# A JSON Web Token: two base64url JSON objects and a signature, the first two starting with '{"'.
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")
# An Airflow workload as JSON, which the Temporal engine seals before it leaves the scheduler.
WORKLOAD_RE = re.compile(rb'"type"\s*:\s*"ExecuteTask"|"ExecuteTask"')
# The workflow type of a task attempt, which every plain gRPC call about one names.
TEMPORAL_RE = re.compile(rb"airflow-task-attempt")


def packets(data):
    """(payload bytes of each packet) of a classic pcap file (tcpdump -w)."""
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[offset + 8:offset + 12])[0]
        yield linktype, data[offset + 16:offset + 16 + incl]
        offset += 16 + incl


def ports(linktype, frame):
    """(low port, high port) of a TCP/IPv4 frame, or None."""
    start = {1: 14, 113: 16, 276: 20}.get(linktype)
    if start is None or len(frame) < start + 24 or frame[start] >> 4 != 4 or frame[start + 9] != 6:
        return None
    ihl = (frame[start] & 0x0F) * 4
    src, dst = struct.unpack(">HH", frame[start + ihl:start + ihl + 4])
    return tuple(sorted((src, dst)))


def main(path):
    wanted = json.load(sys.stdin)
    with open(path, "rb") as f:
        data = f.read()
    flows = {}
    for linktype, frame in packets(data):
        pair = ports(linktype, frame)
        if pair:
            flows[pair[0]] = flows.get(pair[0], 0) + 1
    found = sorted(name for name, value in wanted["secrets"].items() if value and value.encode() in data)
    markers = sorted(name for name, value in wanted["markers"].items() if value.encode() in data)
    print(json.dumps({"secrets": found, "jwt": len(JWT_RE.findall(data)), "workloads": len(WORKLOAD_RE.findall(data)),
                      "temporal_in_clear": len(TEMPORAL_RE.findall(data)),
                      "markers": markers, "packets_by_port": {str(k): v for k, v in sorted(flows.items())}}))


if __name__ == "__main__":
    main(sys.argv[1])
