# kubehtc-controller image. Build from the repository root (BuildKit):
#   docker build -f deploy/images/kubehtc-controller.Dockerfile -t ghcr.io/kubehtc/kubehtc-controller:$(git describe --tags --always) .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kubehtc-controller ./cmd/kubehtc-controller

# Static binary, no shell; runs as the nonroot user (65532) that the chart's securityContext expects.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kubehtc-controller /usr/local/bin/kubehtc-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kubehtc-controller"]
