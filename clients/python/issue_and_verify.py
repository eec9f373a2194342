"""Issue a health code at one province's node and verify it at another's, from Python.

The cross-province check that tests/python_client.rs runs against two real nodes with an
agreement between them; also an example for a platform's own integration tests. Prints one JSON
line: what was issued, both verdicts, and how the nodes refused a call without a token and a
connection that pinned the wrong certificate. Exit 0 when every call went as it should, 1 if not
(the JSON says which), 2 on bad arguments.

    python issue_and_verify.py \\
      --issuer 127.0.0.1:7510 --issuer-cert /tmp/sichuan/tls/node.crt --issuer-token-file sc.token \\
      --verifier 127.0.0.1:7440 --verifier-cert /tmp/guangdong/tls/node.crt \\
      --verifier-token-file gd.token --name 李秀英 --doc-number 51130219900721242X --status yellow
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import grpc
from google import protobuf

import hcmr_client


def _refusal(call) -> dict:
    """Runs a call that should be refused; returns its gRPC status code name and details."""
    try:
        call()
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details()}
    return {"code": "OK", "details": ""}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--issuer", required=True, help="host:port of the issuing province's node")
    p.add_argument("--issuer-cert", required=True)
    p.add_argument("--issuer-token-file", required=True, help="a caller with role issuer")
    p.add_argument("--verifier", required=True, help="host:port of the verifying province's node")
    p.add_argument("--verifier-cert", required=True)
    p.add_argument("--verifier-token-file", required=True, help="a caller with role verifier")
    p.add_argument("--name", required=True)
    p.add_argument("--doc-number", required=True, help="resident identity card number")
    p.add_argument("--status", default="yellow", choices=["green", "yellow", "red"])
    p.add_argument("--checkpoint-id", default="python-client")
    p.add_argument("--stubs-dir", help="where to generate the stubs (default: a temporary folder)")
    p.add_argument("--proto-dir", help="folder holding hcmr/v1/hcmr.proto")
    a = p.parse_args(argv)

    timings = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hcmr-stubs-") as tmp:
        stubs_dir = a.stubs_dir or tmp
        hcmr_client.generate_stubs(stubs_dir, a.proto_dir)
        stubs = hcmr_client.load_stubs(stubs_dir)
        timings["generate_stubs_ms"] = round((time.monotonic() - started) * 1000)

        issuer = hcmr_client.connect(
            a.issuer, a.issuer_cert, hcmr_client.read_token(a.issuer_token_file), stubs=stubs
        )
        verifier = hcmr_client.connect(
            a.verifier, a.verifier_cert, hcmr_client.read_token(a.verifier_token_file), stubs=stubs
        )
        # The same node without a token, and with the issuer's certificate pinned instead of its
        # own: both must be refused.
        anonymous = hcmr_client.connect(a.verifier, a.verifier_cert, None, stubs=stubs)
        mispinned = hcmr_client.connect(
            a.verifier, a.issuer_cert, hcmr_client.read_token(a.verifier_token_file), stubs=stubs
        )
        try:
            t = time.monotonic()
            issued = issuer.issue(a.name, a.doc_number, a.status, lifetime_secs=300)
            timings["issue_ms"] = round((time.monotonic() - t) * 1000)
            t = time.monotonic()
            there = verifier.verify(issued.code, a.checkpoint_id)
            timings["verify_ms"] = round((time.monotonic() - t) * 1000)
            home = issuer.verify(issued.code, a.checkpoint_id)
            # One character changed: never recognized.
            last = issued.code[-1]
            forged = issued.code[:-1] + ("A" if last != "A" else "B")
            tampered = verifier.verify(forged, a.checkpoint_id)
            no_token = _refusal(lambda: anonymous.verify(issued.code, a.checkpoint_id))
            wrong_cert = _refusal(lambda: mispinned.verify(issued.code, a.checkpoint_id))
            info = verifier.node_info()
        finally:
            for n in (issuer, verifier, anonymous, mispinned):
                n.close()

    pb = stubs.pb
    report = {
        "client": {
            "python": sys.version.split()[0],
            "grpcio": grpc.__version__,
            "protobuf": protobuf.__version__,
        },
        "issued": {
            "code_prefix": issued.code[:6],
            "code_len": len(issued.code),
            "cti": issued.cti,
            "kid": issued.kid,
            "iat": issued.iat,
            "exp": issued.exp,
            "masked_name": issued.subject.masked_name,
            "masked_document_number": issued.subject.masked_document_number,
        },
        "verifier_province": info.province,
        "verified_there": hcmr_client.describe_verification(verifier, there),
        "verified_at_home": hcmr_client.describe_verification(issuer, home),
        "tampered": hcmr_client.describe_verification(verifier, tampered),
        "no_token": no_token,
        "wrong_certificate": wrong_cert,
        "timings": timings,
    }
    ok = (
        there.verdict == pb.VERDICT_RECOGNIZED
        and tampered.verdict == pb.VERDICT_NOT_RECOGNIZED
        and no_token["code"] == grpc.StatusCode.UNAUTHENTICATED.name
        and wrong_cert["code"] == grpc.StatusCode.UNAVAILABLE.name
    )
    report["ok"] = ok
    print(json.dumps(report, ensure_ascii=False), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
