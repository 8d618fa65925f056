# Berth's two images for people who build with Docker (BuildKit), laid out as
# `make images` lays them out without Docker: one static binary at the root
# of an empty base holding /etc/passwd and /etc/group with the non-root user
# 65532, the CA bundle, and a world-writable /tmp.
#
#   docker build --target manager   --build-arg VERSION=v0.1.0 -t berth/manager:v0.1.0 .
#   docker build --target registryd --build-arg VERSION=v0.1.0 -t berth/registryd:v0.1.0 .
#
# Build flags are the Makefile's `build` target's; keep them in step.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS deps
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH
ENV CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    LDFLAGS="-s -w -X github.com/berth-dev/berth/internal/version.Version=${VERSION}"

FROM deps AS build-manager
RUN go build -trimpath -ldflags "${LDFLAGS}" -o /out/manager .

FROM deps AS build-registryd
RUN go build -trimpath -ldflags "${LDFLAGS}" -o /out/registryd ./registryd

# The base every image shares: users, CA certificates, /tmp.
FROM golang:${GO_VERSION}-bookworm AS rootfs
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp \
 && chmod 1777 /rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group

FROM scratch AS base
COPY --from=rootfs /rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /

FROM base AS registryd
COPY --from=build-registryd /out/registryd /registryd
EXPOSE 5000
ENTRYPOINT ["/registryd"]
CMD ["serve"]

# Last, so a plain `docker build .` builds the manager.
FROM base AS manager
COPY --from=build-manager /out/manager /manager
ENTRYPOINT ["/manager"]
