"""A small Python client for an hcmr node: issue and verify health codes over gRPC with TLS.

For provincial health-code platforms and checkpoint systems written in Python. The gRPC stubs are
generated from the API definition (proto/hcmr/v1/hcmr.proto) by grpcio-tools, into a folder of
your choice, and are not kept in the repository:

    python hcmr_client.py gen build/hcmr-stubs          # or generate_stubs("build/hcmr-stubs")

Then:

    import hcmr_client
    node = hcmr_client.connect("hcmr.sc.example:7510", "sichuan-node.crt",
                               hcmr_client.read_token("platform.token"),
                               stubs_dir="build/hcmr-stubs")
    issued = node.issue("李秀英", "51130219900721242X", "yellow", status_valid_for_secs=14 * 86400)
    answer = node.verify(issued.code, checkpoint_id="chengdu-east-gate-3")
    node.close()

Security: the channel is TLS (the node serves TLS 1.3 only) and trusts exactly the node's
certificate (`tls/node.crt` in the node's folder, self-signed, given by the node's operator); the
API token goes in the `authorization: Bearer ...` header of each call and is never sent over an
unencrypted channel. Nothing here logs names, document numbers or tokens.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import NamedTuple, Optional, Union

import grpc

#: The API definition inside the hcmr repository (clients/python/../../proto); a platform that
#: copies hcmr.proto elsewhere passes `proto_dir` or sets HCMR_PROTO_DIR.
DEFAULT_PROTO_DIR = Path(__file__).resolve().parent.parent.parent / "proto"
PROTO_FILE = Path("hcmr") / "v1" / "hcmr.proto"
#: Seconds allowed for each call (and for the TLS connection).
DEFAULT_TIMEOUT = 10.0

StrPath = Union[str, "os.PathLike[str]"]


class Stubs(NamedTuple):
    """The generated modules: messages and enums (`pb`), service stubs (`grpc`)."""

    pb: ModuleType
    grpc: ModuleType


def generate_stubs(out_dir: StrPath, proto_dir: Optional[StrPath] = None) -> Path:
    """Generates hcmr/v1/hcmr_pb2.py and hcmr_pb2_grpc.py under `out_dir` with grpcio-tools.

    Runs `python -m grpc_tools.protoc -I PROTO_DIR --python_out=OUT --grpc_python_out=OUT
    PROTO_DIR/hcmr/v1/hcmr.proto`; raises RuntimeError with protoc's message when it fails.
    """
    proto_dir = Path(proto_dir or os.environ.get("HCMR_PROTO_DIR") or DEFAULT_PROTO_DIR)
    proto = proto_dir / PROTO_FILE
    if not proto.is_file():
        raise FileNotFoundError(f"{proto}: the hcmr API definition is not there (set proto_dir)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(proto),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed ({done.returncode}): {done.stderr.strip()}")
    return out


def load_stubs(stubs_dir: StrPath) -> Stubs:
    """Imports the stubs generated into `stubs_dir` (generating them first if missing)."""
    stubs_dir = Path(stubs_dir).resolve()
    if not (stubs_dir / "hcmr" / "v1" / "hcmr_pb2_grpc.py").is_file():
        generate_stubs(stubs_dir)
    # The generated code imports its messages as `hcmr.v1.hcmr_pb2`.
    if str(stubs_dir) not in sys.path:
        sys.path.insert(0, str(stubs_dir))
    return Stubs(
        importlib.import_module("hcmr.v1.hcmr_pb2"),
        importlib.import_module("hcmr.v1.hcmr_pb2_grpc"),
    )


def read_token(path: StrPath) -> str:
    """Reads an API token file as written by `hcmr caller add ... --token-out FILE`."""
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"{path}: empty token file")
    return token


def _host_port(endpoint: str) -> str:
    """'https://host:port' or 'host:port' -> 'host:port'. Plain http is refused."""
    if endpoint.startswith("https://"):
        endpoint = endpoint[len("https://") :]
    elif "://" in endpoint:
        raise ValueError(f"{endpoint}: this client speaks TLS only (https:// or host:port)")
    endpoint = endpoint.rstrip("/")
    if ":" not in endpoint:
        raise ValueError(f"{endpoint}: expected host:port, e.g. 127.0.0.1:7510")
    return endpoint


class Node:
    """A connection to one hcmr node, as one API caller."""

    def __init__(self, channel: grpc.Channel, stubs: Stubs, timeout: float = DEFAULT_TIMEOUT):
        self.channel = channel
        self.pb = stubs.pb
        self.timeout = timeout
        self.health_codes = stubs.grpc.HealthCodeServiceStub(channel)
        self.federation = stubs.grpc.FederationServiceStub(channel)
        self.operator = stubs.grpc.OperatorServiceStub(channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def status(self, status: Union[str, int]) -> int:
        """'green' / 'yellow' / 'red' (or HEALTH_STATUS_...) -> the HealthStatus value."""
        if isinstance(status, int):
            return status
        name = status.strip().upper()
        if not name.startswith("HEALTH_STATUS_"):
            name = "HEALTH_STATUS_" + name
        return self.pb.HealthStatus.Value(name)

    def issue(
        self,
        name: str,
        document_number: str,
        status: Union[str, int],
        *,
        status_valid_for_secs: int = 14 * 86400,
        lifetime_secs: int = 0,
        document_type: Optional[int] = None,
    ):
        """Code-making request (needs role issuer): returns IssueHealthCodeResponse.

        `document_type` defaults to the resident identity card (GB 11643 number, checked by the
        node); `lifetime_secs` 0 is the node's default (300 s).
        """
        pb = self.pb
        if document_type is None:
            document_type = pb.DOCUMENT_TYPE_RESIDENT_IDENTITY_CARD
        request = pb.IssueHealthCodeRequest(
            subject=pb.Subject(
                name=name, document_type=document_type, document_number=document_number
            ),
            status=self.status(status),
            status_valid_until=int(time.time()) + status_valid_for_secs,
            code_lifetime_secs=lifetime_secs,
        )
        return self.health_codes.IssueHealthCode(request, timeout=self.timeout)

    def verify(self, code: str, checkpoint_id: str = ""):
        """Code-verification request (needs role verifier): returns VerifyHealthCodeResponse.

        Treat the person by `local_status` only when `verdict` is VERDICT_RECOGNIZED.
        """
        request = self.pb.VerifyHealthCodeRequest(code=code, checkpoint_id=checkpoint_id)
        return self.health_codes.VerifyHealthCode(request, timeout=self.timeout)

    def node_info(self):
        """The node's province and keys (open to any caller)."""
        return self.federation.GetNodeInfo(self.pb.GetNodeInfoRequest(), timeout=self.timeout)


def connect(
    endpoint: str,
    cert_path: StrPath,
    token: Optional[str],
    *,
    stubs_dir: Optional[StrPath] = None,
    stubs: Optional[Stubs] = None,
    server_name: Optional[str] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Node:
    """Opens a TLS channel to the node at `endpoint` ('host:port' or 'https://host:port').

    `cert_path`: the node's certificate (PEM), trusted as the only root: the node is accepted
    only if it presents that certificate. Its names are localhost, 127.0.0.1 and ::1, plus any
    the operator added; for another host name pass `server_name` (one of the certificate's).
    `token`: the caller's API token, sent as `authorization: Bearer <token>` on every call; None
    for calls that need none (GetNodeInfo), and for testing refusals.
    The stubs come from `stubs`, or are loaded (and generated if missing) from `stubs_dir`.
    """
    if stubs is None:
        if stubs_dir is None:
            raise ValueError("connect needs stubs or stubs_dir (see generate_stubs)")
        stubs = load_stubs(stubs_dir)
    root = Path(cert_path).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    if token is not None:
        # Adds `authorization: Bearer <token>`; gRPC sends call credentials only over TLS.
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    options = []
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    channel = grpc.secure_channel(_host_port(endpoint), credentials, options=options)
    return Node(channel, stubs, timeout)


def describe_verification(node: Node, answer) -> dict:
    """A VerifyHealthCodeResponse as a plain dict (enum names, masked subject; no personal data
    beyond the masked forms the code carries)."""
    pb = node.pb
    return {
        "verdict": pb.Verdict.Name(answer.verdict),
        "reason": pb.Reason.Name(answer.reason),
        "detail": answer.detail,
        "explanation": answer.explanation,
        "issuer_province": answer.issuer_province,
        "issued_status": pb.HealthStatus.Name(answer.issued_status),
        "local_status": pb.HealthStatus.Name(answer.local_status),
        "masked_name": answer.subject.masked_name,
        "masked_document_number": answer.subject.masked_document_number,
        "document_type": pb.DocumentType.Name(answer.subject.document_type),
        "cti": answer.cti,
        "exp": answer.exp,
        "signature_verified": answer.signature_verified,
        "agreement_id": answer.agreement_id,
        "issuer_state_synced": answer.issuer_state_synced,
    }


def _main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gen", help="generate the stubs into a folder")
    g.add_argument("out")
    g.add_argument("--proto-dir", help="folder holding hcmr/v1/hcmr.proto")
    for name in ("issue", "verify"):
        c = sub.add_parser(name, help=f"{name} a health code")
        c.add_argument("--node", required=True, help="host:port of the node")
        c.add_argument("--tls-cert", required=True, help="the node's certificate (PEM)")
        c.add_argument("--token-file", required=True, help="the caller's API token")
        c.add_argument("--stubs-dir", required=True, help="generated stubs (made if missing)")
        if name == "issue":
            c.add_argument("--name", required=True)
            c.add_argument("--doc-number", required=True)
            c.add_argument("--status", required=True, choices=["green", "yellow", "red"])
            c.add_argument("--status-valid-for-secs", type=int, default=14 * 86400)
            c.add_argument("--lifetime-secs", type=int, default=0)
        else:
            c.add_argument("code")
            c.add_argument("--checkpoint-id", default="")
    a = p.parse_args(argv)
    if a.command == "gen":
        print(generate_stubs(a.out, a.proto_dir))
        return 0
    with connect(a.node, a.tls_cert, read_token(a.token_file), stubs_dir=a.stubs_dir) as node:
        try:
            if a.command == "issue":
                r = node.issue(
                    a.name,
                    a.doc_number,
                    a.status,
                    status_valid_for_secs=a.status_valid_for_secs,
                    lifetime_secs=a.lifetime_secs,
                )
                print(r.code)
                print(f"cti {r.cti}  exp {r.exp}  kid {r.kid}", file=sys.stderr)
                return 0
            d = describe_verification(node, node.verify(a.code, a.checkpoint_id))
        except grpc.RpcError as e:
            print(f"{e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    if d["verdict"] != "VERDICT_RECOGNIZED":
        print(f"{d['verdict']}  {d['reason']}  {d['detail']}\n  {d['explanation']}")
        return 3
    print(f"{d['verdict']}  counts here as {d['local_status']}  ({d['explanation']})")
    print(f"  issuer {d['issuer_province']}  {d['masked_name']}  {d['masked_document_number']}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
