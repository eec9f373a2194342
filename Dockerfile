# The hcmr image: `docker build -t REGISTRY/hcmr:VERSION .` at the repository's top
# (docs/deploy.md section 5). Two stages: the build, in Rust's Debian image, and a small runtime
# with only the binary and the CA certificates, run as the non-root user 10001.
# Every Rust dependency comes from crates.io at the versions of Cargo.lock (--locked); protobuf
# is compiled by protox in build.rs (no protoc) and mimalloc by the image's C compiler.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hcmr \
 && strip target/release/hcmr

# Debian slim rather than distroless: the pods' init containers use its /bin/sh and install(1)
# to copy key files from their Secrets with mode 0600 (deploy/k8s).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 hcmr \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin hcmr \
 && mkdir -p /etc/hcmr /var/lib/hcmr /run/hcmr \
 && chown 10001:10001 /var/lib/hcmr /run/hcmr \
 && chmod 0700 /var/lib/hcmr /run/hcmr
COPY --from=build /src/target/release/hcmr /usr/local/bin/hcmr
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
# gRPC, the checkpoint page, Prometheus metrics (all TLS), and the plain-text health port.
EXPOSE 7510 8510 9510 8080
ENTRYPOINT ["hcmr"]
CMD ["serve", "--config", "/etc/hcmr/hcmr.toml"]
