# kubehtc-csi image (node plugin). Build from the repository root (BuildKit):
#   docker build -f deploy/images/kubehtc-csi.Dockerfile -t ghcr.io/kubehtc/kubehtc-csi:$(git describe --tags --always) .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kubehtc-csi ./cmd/kubehtc-csi

# Debian, not distroless: the plugin runs mount(8)/umount(8) (util-linux) for bind mounts, and the "helper"
# mounter runs mount -t cvmfs, which needs the CVMFS client (install cvmfs from CERN's repository in a derived
# image if you use it). Runs privileged as root (the DaemonSet says why).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends util-linux ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/kubehtc-csi /usr/local/bin/kubehtc-csi
ENTRYPOINT ["/usr/local/bin/kubehtc-csi"]
