# The `ticker` image: one binary for every role (single process, `publish`, edge `serve`).
# Build stage: compile the release binary. Runtime stage: a slim Debian with the binary, the
# settings files, curl for health checks, and an unprivileged user.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# The workspace's manifests first (the server's, the load generator's in bench/, one Cargo.lock),
# so the dependency download is cached until one of them changes. Their targets have explicit
# paths, so no source file is needed yet; bench/ is only a member of the workspace, never built.
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml bench/
RUN cargo fetch --locked
COPY src src
COPY config config
COPY web web
RUN cargo build --release --locked -p ticker --bin ticker

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
