# kubehtc-snapshotter image. Build from the repository root (BuildKit):
#   docker build -f deploy/images/kubehtc-snapshotter.Dockerfile -t ghcr.io/kubehtc/kubehtc-snapshotter:$(git describe --tags --always) .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (CGO off): -mode=install copies this very binary onto the node, whose libc is unknown.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kubehtc-snapshotter ./cmd/kubehtc-snapshotter

# The DaemonSet runs the binary from this path (install, watch, and the probe command). The node's systemd
# runs the installed copy; the container needs no shell.
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/kubehtc-snapshotter /usr/local/bin/kubehtc-snapshotter
ENTRYPOINT ["/usr/local/bin/kubehtc-snapshotter"]
