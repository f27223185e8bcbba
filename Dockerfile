# zerodrop image: static binary on distroless, non-root, exec-form ENTRYPOINT so zerodrop is
# PID 1 and receives SIGTERM itself (the mistake zerodrop warns others about).
# Build: docker build -t zerodrop:0.1.0 .
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY core ./core
# The workspace's other members must be there for cargo to read the workspace; only zerodrop is built.
COPY testkit ./testkit
COPY benches ./benches
COPY tests/fixtures/pod-typical.json ./tests/fixtures/pod-typical.json
# The release profile without its line tables, stripped: the image carries no debug info.
RUN CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
    cargo build --release --locked --target x86_64-unknown-linux-musl -p zerodrop --bin zerodrop \
 && cp target/x86_64-unknown-linux-musl/release/zerodrop /zerodrop

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /zerodrop /zerodrop
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/zerodrop"]
CMD ["serve"]
