# The aether-devhot image: /webhook (the manager), /fetcher (the sidecar it
# injects) and /store (the artifact store), static, on distroless's non-root
# base.
# Build: make docker-build IMG=aether-devhot:dev

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first, so that a source change reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
# The same build as `make build`, plus the artifact store.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -o /out/webhook ./cmd/webhook && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -o /out/fetcher ./cmd/fetcher && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -o /out/store ./cmd/store

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/webhook /webhook
COPY --from=build /out/fetcher /fetcher
COPY --from=build /out/store /store
# distroless "nonroot"; the chart and the injected fetcher run as it too.
USER 65532:65532
ENTRYPOINT ["/webhook"]
