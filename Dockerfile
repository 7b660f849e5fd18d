# The `ticker` image: one binary for every role (single process, `publish`, edge `serve`).
# Build stage: compile the release binary. Runtime stage: a slim Debian with the binary, the
# settings files, curl for health checks, and an unprivileged user.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# The manifest first, so the dependency download is cached until Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin/ticker-bench && echo "fn main() {}" > src/main.rs \
    && echo "fn main() {}" > src/bin/ticker-bench/main.rs && touch src/lib.rs \
    && cargo fetch --locked && rm -rf src
COPY src src
COPY config config
COPY web web
RUN cargo build --release --locked --bin ticker

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home ticker
WORKDIR /app
COPY --from=build /src/target/release/ticker /usr/local/bin/ticker
COPY config config
USER ticker
ENV TICKER_ENV=docker
EXPOSE 8080
ENTRYPOINT ["ticker"]
CMD ["serve"]
