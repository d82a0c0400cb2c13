# syntax=docker/dockerfile:1
# Multi-stage build: one static-ish binary on a slim Debian, run as a
# non-root user, SQLite data (and the generated secret key) on a volume.

# SQLite and libpq are compiled into the binary: the build needs a C
# compiler (in the image), OpenSSL's headers and pkg-config.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tandem && strip target/release/tandem

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tandem --create-home tandem \
 && mkdir /var/lib/tandem/data && chown tandem:tandem /var/lib/tandem/data
COPY --from=build /src/target/release/tandem /usr/local/bin/tandem
USER tandem
WORKDIR /var/lib/tandem
# ./data holds the SQLite database and secret.key unless TANDEM_DATABASE_URL
# points at PostgreSQL and TANDEM_SECRET_KEY is given. It exists, owned by
# tandem, before it is declared a volume: a new named volume takes its
# owner (one Docker creates for a missing path is root's, and tandem could
# not write there). Set TANDEM_PUBLIC_URL to the address clients use: the
# SCIM base URLs handed out are built from it.
VOLUME ["/var/lib/tandem/data"]
ENV TANDEM_BIND=0.0.0.0:8080
EXPOSE 8080
# `tandem healthcheck` asks /readyz on the bind address (the database
# answers). It reads the environment, not `serve`'s flags: configure the
# container with TANDEM_* variables (TANDEM_CONFIG for a file).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["tandem", "healthcheck"]
ENTRYPOINT ["tandem"]
CMD ["serve"]
