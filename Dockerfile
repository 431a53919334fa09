# cellqc: build in the Rust image, run in a slim Debian with libpq.
FROM rust:1-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock diesel.toml ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin cellqc && strip target/release/cellqc

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/cellqc --create-home cellqc
COPY --from=build /src/target/release/cellqc /usr/local/bin/cellqc
USER cellqc
ENV CELLQC_BIND=0.0.0.0:8080 \
    CELLQC_DATA_DIR=/var/lib/cellqc \
    CELLQC_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/cellqc"]
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["cellqc"]
CMD ["serve"]
